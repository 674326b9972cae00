"""Process memory and CPU from ``/proc`` (Linux only; psutil is not a dependency).

``machine_busy_seconds`` lets a run tell how much of the machine other processes took meanwhile (the
machine is shared; a noisy neighbour shows up as "other CPU" instead of silently lowering a figure).

A server may be a supervisor with worker children (``--workers 2``), so every reading covers the process and
all its live descendants.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "cpu_seconds",
    "machine_busy_seconds",
    "main_thread_cpu_seconds",
    "main_thread_wait_seconds",
    "process_tree",
    "rss_bytes",
]

_PROC = Path("/proc")
_MAX_DEPTH = 8
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int, tid: int | None = None) -> list[str] | None:
    """Fields of /proc/<pid>/stat (of its thread ``tid``: /proc/<pid>/task/<tid>/stat) after the command
    name (which may hold spaces and parentheses)."""
    path = _PROC / str(pid) if tid is None else _PROC / str(pid) / "task" / str(tid)
    try:
        text = (path / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    parents = _parents()
    tree = [pid]
    frontier = {pid}
    for _ in range(_MAX_DEPTH):
        frontier = {child for child, parent in parents.items() if parent in frontier}
        if not frontier:
            break
        tree.extend(sorted(frontier))
    return tree


def _rss_of(pid: int) -> int:
    try:
        lines = (_PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_bytes(pid: int) -> tuple[int, int]:
    """(sum over the tree, largest single process) resident set size in bytes."""
    sizes = [_rss_of(member) for member in process_tree(pid)]
    return sum(sizes), max(sizes, default=0)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, every process) since boot."""
    fields = (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU time consumed so far by the live tree of ``pid``."""
    ticks = 0
    for member in process_tree(pid):
        fields = _stat_fields(member)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _CLOCK_TICKS


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid``'s main thread alone: a one-worker server's event loop, which is
    what caps its requests/s (its other threads and its trace writer process can use the other core)."""
    fields = _stat_fields(pid, pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def main_thread_wait_seconds(pid: int) -> float:
    """Time ``pid``'s main thread has spent runnable but waiting for a CPU (from its ``schedstat``, in
    nanoseconds): a busy event loop waiting for a core another process took. 0.0 where the kernel keeps
    no schedstat."""
    try:
        fields = (_PROC / str(pid) / "task" / str(pid) / "schedstat").read_text().split()
    except OSError:
        return 0.0
    return int(fields[1]) / 1e9 if len(fields) >= 2 else 0.0
