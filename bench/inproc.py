"""``python -m bench.inproc``: the event loop's CPU time per request, in process, traced and not.

Instruction counts (:mod:`bench.callgrind`) are repeatable, but they do not say what the instructions cost:
on the tenth session's machine the traced request ran 14 % more instructions and took the loop's thread
40 % more CPU time (``bench/RESULTS.md``). Here the same driver (the async echo agent served through its
ASGI entry, no sockets, no load generator) runs in this process, and the CPU time of the thread that runs
the event loop is read around the measured requests (``getrusage(RUSAGE_THREAD)``: user and system time,
not wall time, so another process on the machine changes it little). Each mode runs in a fresh
interpreter, ``--repeat`` times; the median is printed, and the traced modes against ``off``.

    .venv/bin/python -m bench.inproc                           # on and off, 30,000 requests, 3 repeats
    .venv/bin/python -m bench.inproc --modes on,off,tracing,metrics --requests 50000

The trace writer is another process (started by the first stored trace) and is not counted; the exporter
thread of the serving process is not either: this is the loop's share, what caps a worker's requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from bench.callgrind import MODES, drive

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent


def _inner(mode: str, requests: int, warmup: int) -> dict[str, float]:
    """Serve in this process; the loop thread's user and system CPU seconds over the measured requests."""
    marks: list[resource.struct_rusage] = []

    def measuring(start: bool) -> None:
        marks.append(resource.getrusage(resource.RUSAGE_THREAD))

    asyncio.run(drive(mode, requests, warmup, False, measuring))
    before, after = marks
    return {"user": after.ru_utime - before.ru_utime, "system": after.ru_stime - before.ru_stime}


def _measure(mode: str, requests: int, warmup: int) -> float:
    """Microseconds of the loop thread's CPU per request, from a fresh interpreter."""
    command = [sys.executable, "-m", "bench.inproc", "--inner", mode]
    command += ["--requests", str(requests), "--warmup", str(warmup)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench.inproc {mode} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    seconds = json.loads(done.stdout.strip().splitlines()[-1])
    return float(seconds["user"] + seconds["system"]) / requests * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="on,off", help="comma-separated: on, off, tracing, metrics")
    parser.add_argument("--requests", type=int, default=30_000, help="measured requests (default 30,000)")
    parser.add_argument("--warmup", type=int, default=500, help="requests before measuring (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per mode (default 3)")
    parser.add_argument("--inner", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        print(json.dumps(_inner(args.inner, args.requests, args.warmup)))
        return 0
    modes = [m.strip() for m in args.modes.split(",")]
    unknown = [m for m in modes if m not in MODES]
    if unknown or args.requests < 1 or args.repeat < 1:
        parser.error(f"modes from {sorted(MODES)}, --requests and --repeat at least 1")
    medians: dict[str, float] = {}
    for mode in modes:
        runs = [_measure(mode, args.requests, args.warmup) for _ in range(args.repeat)]
        medians[mode] = statistics.median(runs)
        spread = ", ".join(f"{r:.1f}" for r in runs)
        print(f"/invocations, {MODES[mode]}: {medians[mode]:.1f} us of loop CPU per request ({spread})")
    if "off" in medians:
        for mode, value in medians.items():
            if mode != "off":
                print(f"  {mode} / off: {value / medians['off']:.2f}x the loop's CPU per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
