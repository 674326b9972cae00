"""``set_agent``: how an agent file names the agent to serve (MLflow's ``set_model``)."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["capture_agent", "set_agent"]

_lock = threading.Lock()
_captured: list[Any] = []
_capturing = threading.local()


def set_agent(agent: Any) -> None:
    """Declare ``agent`` as the one this file serves. Outside a load it does nothing, so a file can be run."""
    if getattr(_capturing, "active", False):
        _captured.append(agent)


class capture_agent:
    """Collect what ``set_agent`` receives while a file is imported; one load at a time."""

    def __enter__(self) -> list[Any]:
        _lock.acquire()
        _captured.clear()
        _capturing.active = True
        return _captured

    def __exit__(self, *exc: object) -> None:
        _capturing.active = False
        _lock.release()
