"""What a canary is: its definition (immutable once started), its status, and the audit entries of its life.

The definition is written once, by ``runtime canary start``, and read by every replica; only the status
moves, through compare-and-set transitions (see :mod:`runtime.canary.state`)::

    running --promote--> promoting --alias moved--> promoted
       |                     \\--alias move failed--> running
       |                     \\--claim abandoned (over 120 s old): promoted if the alias moved, else running
       \\--rollback--> rolled_back      (operator, guardrail, max duration, challenger failed to load)
"""

from __future__ import annotations

import re
import secrets
import time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from runtime.errors import BadRequest

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "AuditEntry",
    "CanaryDefinition",
    "CanaryState",
    "Mode",
    "Status",
    "new_canary_id",
    "now_ms",
    "parse_duration",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
ERROR_RATE = "error_rate"
LATENCY = "latency"

_STICKY = re.compile(r"^(user|session|none|header:[A-Za-z0-9-]+)$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_canary_id() -> str:
    return f"c-{secrets.token_hex(8)}"


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` -> seconds."""
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise BadRequest(f"invalid duration {text!r}: use a positive number with s, m, h or d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Mode(StrEnum):
    SPLIT = "split"
    SHADOW = "shadow"


class Status(StrEnum):
    RUNNING = "running"
    PROMOTING = "promoting"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"

    @property
    def ended(self) -> bool:
        return self in (Status.PROMOTED, Status.ROLLED_BACK)


class CanaryDefinition(BaseModel):
    model_config = ConfigDict(frozen=True)

    canary_id: str
    model: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]+$", max_length=256)]
    champion_alias: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]+$")] = "champion"
    champion_version: int | None = None
    challenger_version: Annotated[int, Field(ge=1)]
    weight: Annotated[float, Field(gt=0, le=100)] = 10.0
    mode: Mode = Mode.SPLIT
    sticky_by: str = "user"
    min_requests: Annotated[int, Field(ge=1)] = 500
    max_duration_s: Annotated[float, Field(gt=0)] | None = None
    auto: bool = False
    guards: tuple[str, ...] = ()
    primary: str | None = None
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    started_ms: int = Field(default_factory=now_ms)
    started_by: str = "unknown"

    @field_validator("sticky_by")
    @classmethod
    def _sticky(cls, value: str) -> str:
        if not _STICKY.match(value):
            raise ValueError("sticky_by must be user, session, none or header:<Name>")
        return value

    @property
    def challenger_uri(self) -> str:
        return f"models:/{self.model}/{self.challenger_version}"

    @property
    def champion_uri(self) -> str:
        return f"models:/{self.model}@{self.champion_alias}"

    @property
    def sticky_header(self) -> str | None:
        return self.sticky_by.partition(":")[2].lower() or None

    def expired(self, at_ms: int) -> bool:
        return self.max_duration_s is not None and at_ms - self.started_ms >= self.max_duration_s * 1000


class AuditEntry(BaseModel):
    """One decision or event: who, what, when, why, and the numbers behind it."""

    model_config = ConfigDict(frozen=True)

    at_ms: int = Field(default_factory=now_ms)
    actor: str
    action: str
    reason: str | None = None
    numbers: dict[str, JsonValue] = Field(default_factory=dict)


class CanaryState(BaseModel):
    """A canary as Redis holds it now: the definition plus where its life has got to."""

    model_config = ConfigDict(frozen=True)

    definition: CanaryDefinition
    status: Status
    updated_ms: int
    decided_by: str | None = None
    reason: str | None = None

    @property
    def canary_id(self) -> str:
        return self.definition.canary_id

    def summary(self) -> dict[str, Any]:
        return {
            **self.definition.model_dump(mode="json"),
            "status": self.status.value,
            "updated_ms": self.updated_ms,
            "decided_by": self.decided_by,
            "reason": self.reason,
        }
