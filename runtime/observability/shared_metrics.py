"""``/metrics`` of all worker processes at once, whichever worker answers the scrape.

With ``--workers N`` each uvicorn worker is its own process with its own counters, and a scrape reaches
one of them: alone, its numbers would jump between workers' from scrape to scrape. So each worker
publishes a snapshot of its metrics (:meth:`Registry.snapshot`, plain JSON) to a folder the workers
share (``RUNTIME_METRICS_DIR``; ``runtime serve --workers N`` makes one) once a second and when it
stops, and the worker that answers a scrape renders its own live values with every other worker's last
snapshot (see :meth:`Registry.render`): counters and histograms summed over every worker that ever ran
(totals never go down when a worker is replaced), gauges over the workers still publishing.

Other workers' values are up to a second old; nothing of this is on the request path (the snapshot is
taken on the event loop, once a second, and written by a thread). A folder that cannot be written is
refused when ``runtime serve`` starts (:func:`check_writable`); should it become unwritable later, the
failure is logged at most once a minute, in one line, and the publishing goes on trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from runtime.background import running
from runtime.errors import BadRequest
from runtime.observability.prometheus import Registry, Snapshot

__all__ = ["SharedMetrics", "check_writable", "start_afresh"]

log = logging.getLogger("runtime.observability")

_SUFFIX = ".metrics.json"
_LIVE_INTERVALS = 5  # a worker silent for this many intervals is taken as gone (its gauges no longer count)
FAILURE_LOG_INTERVAL = 60.0  # seconds: a folder that cannot be written is reported at most this often


def check_writable(directory: str | Path) -> None:
    """Raise ``BadRequest`` (a start-up error, exit code 2) when the workers could not publish their metrics
    to ``directory`` (``RUNTIME_METRICS_DIR``): it cannot be created, or a file cannot be written in it."""
    folder = Path(directory)
    probe = folder / f".probe-{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise BadRequest(
            f"RUNTIME_METRICS_DIR={str(directory)!r} cannot be used: cannot create or write to it ({reason})",
            param="metrics_dir",
        ) from None


def start_afresh(directory: str | Path) -> None:
    """Empty ``directory`` of an earlier run's snapshots (they would add to this run's totals): for the
    process that starts the workers, before it does."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob(f"*{_SUFFIX}"):
        path.unlink(missing_ok=True)


class SharedMetrics:
    def __init__(
        self, directory: str | Path, registry: Registry, interval: float = 1.0, name: str | None = None
    ) -> None:
        self.directory = Path(directory)
        self.registry = registry
        self.interval = interval
        self.path = self.directory / f"{name or os.getpid()}{_SUFFIX}"  # one file per worker process
        self._failure_logged_at: float | None = None  # time.monotonic() of the last failure logged

    def publish(self) -> None:
        """Write this worker's snapshot where the others read it (atomically: never half a file)."""
        self._write(self.registry.snapshot())

    def _write(self, snapshot: Snapshot) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(snapshot, separators=(",", ":")))
        os.replace(partial, self.path)

    def others(self) -> list[tuple[Snapshot, bool]]:
        """(snapshot, still publishing) of every other worker; an unreadable file is skipped."""
        found: list[tuple[Snapshot, bool]] = []
        stale_before = time.time() - _LIVE_INTERVALS * self.interval
        for path in self.directory.glob(f"*{_SUFFIX}"):
            if path == self.path:
                continue
            try:
                mtime = path.stat().st_mtime
                snapshot = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(snapshot, dict):
                found.append((snapshot, mtime >= stale_before))
        return found

    def render(self) -> bytes:
        return self.registry.render(self.others())

    @contextlib.asynccontextmanager
    async def publishing(self, settle: Callable[[], object] | None = None) -> AsyncIterator[None]:
        """Publish once a second while the block runs, and a last time when it ends; before each periodic
        publish, ``settle`` (blocking, run in a thread) lets metrics counted elsewhere arrive (see
        ``Observability.settle_metrics``)."""
        try:
            async with running(self._run(settle), "metrics-publisher"):
                yield
        finally:
            try:
                self.publish()
            except OSError as exc:
                self._failed(exc)

    async def _run(self, settle: Callable[[], object] | None) -> None:
        while True:
            if settle is not None:
                await asyncio.to_thread(settle)
            try:
                snapshot = self.registry.snapshot()  # on the loop: the values' one writer
                await asyncio.to_thread(self._write, snapshot)
            except OSError as exc:
                self._failed(exc)
            await asyncio.sleep(self.interval)

    def _failed(self, exc: OSError) -> None:
        """Log a failed publish in one line, at most once a minute: a folder that cannot be written fails
        every second, and the reason is the same each time."""
        now = time.monotonic()
        if self._failure_logged_at is not None and now - self._failure_logged_at < FAILURE_LOG_INTERVAL:
            return
        self._failure_logged_at = now
        log.warning(
            "could not publish metrics to %s: %s (logged at most once a minute while it fails)",
            self.directory,
            exc,
        )
