"""bench.procfs reads CPU time from /proc: the main thread's apart from the rest of the process."""

from __future__ import annotations

import os
import threading
import time

from bench.procfs import cpu_seconds, main_thread_cpu_seconds


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
