"""What the composition root hands to the routes, through ``app.state.runtime``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from runtime.config import Settings
from runtime.serving import AgentService

__all__ = ["Degraded", "ReadinessCheck", "RuntimeState", "runtime_state"]

# A named check for /ready: returns None when fine, else why not (degraded parts are reported too).
ReadinessCheck = Callable[[], Awaitable[str | None]]


class Degraded(str):
    """A check's answer for a feature that is degraded while requests still succeed (canary routing without
    Redis): ``/ready`` reports it and stays 200, so a load balancer keeps the replica in rotation."""

    __slots__ = ()


@dataclass(slots=True)
class RuntimeState:
    settings: Settings
    service: AgentService
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)


def runtime_state(request: Request) -> RuntimeState:
    state: RuntimeState = request.app.state.runtime
    return state
