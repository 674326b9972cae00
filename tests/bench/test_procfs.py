"""bench.procfs reads CPU time from /proc: the main thread's apart from the rest of the process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from bench.procfs import cpu_seconds, main_thread_cpu_seconds, main_thread_wait_seconds


def _burn(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU time (bounded by that amount)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_the_main_threads_cpu_leaves_other_threads_out() -> None:
    pid = os.getpid()
    start_main, start_all = main_thread_cpu_seconds(pid), cpu_seconds(pid)

    worker = threading.Thread(target=_burn, args=(0.3,))
    worker.start()
    worker.join()
    after_worker_main, after_worker_all = main_thread_cpu_seconds(pid), cpu_seconds(pid)
    _burn(0.3)
    after_main = main_thread_cpu_seconds(pid)

    assert after_worker_all - start_all >= 0.25  # the process spent it
    assert after_worker_main - start_main < 0.15  # but not its main thread, which waited
    assert after_main - after_worker_main >= 0.25


def test_the_main_threads_wait_for_a_cpu_is_counted() -> None:
    """Two busy processes on one CPU: each waits for it about half the time."""
    pid = os.getpid()
    cpus = os.sched_getaffinity(0)
    one = {min(cpus)}
    busy = "import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass\n"
    os.sched_setaffinity(0, one)
    try:
        rival = subprocess.Popen([sys.executable, "-c", busy])
        os.sched_setaffinity(rival.pid, one)
        time.sleep(0.05)
        before = main_thread_wait_seconds(pid)
        _burn(0.3)
        waited = main_thread_wait_seconds(pid) - before
        rival.wait(10)
    finally:
        os.sched_setaffinity(0, cpus)
    assert waited >= 0.1  # ~0.3 s: the rival had the CPU about as long as we did
    assert main_thread_wait_seconds(2**22 + 12345) == 0.0  # no such process: nothing to read
