"""The knobs of one bench run, and the ``--quick`` preset."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["BenchOptions"]


@dataclass(frozen=True)
class BenchOptions:
    out: Path
    duration: float = 5.0
    warmup: float = 1.0
    concurrency: tuple[int, ...] = (1, 16, 64)
    repeat: int = 3
    only: tuple[str, ...] = ()  # server names and/or scenario names; empty: everything
    slow_streams: int = 1000
    slow_deltas: int = 300  # at 10 deltas/s: 30 s
    tail: float = 5.0  # seconds of silence after the load in which deferred server CPU is counted
    mlflow_python: str | None = None
    quick: bool = False

    def quick_preset(self) -> BenchOptions:
        """A smoke run of about two minutes: short windows, one repeat, a small slow-streams load."""
        return replace(
            self, duration=1.5, warmup=0.5, repeat=1, slow_streams=200, slow_deltas=30, tail=2.0, quick=True
        )

    def wants(self, *names: str) -> bool:
        return not self.only or any(name in self.only for name in names)
