"""Which requests each attached scorer sees: a deterministic sample and an optional filter.

Sampling hashes (trace id, scorer name) rather than drawing a random number, so a decision can be
repeated anywhere: every replica, a re-run, a debugging session agree on whether a trace was in the sample;
and two scorers at the same rate see independent samples, not always the same traces.

A filter is a comma-separated list of ``field=value`` conditions, all of which must hold, on the fields
a request has when it ends: ``status`` (OK, ERROR, CANCELLED, TIMEOUT), ``endpoint``, ``variant``,
``stream`` (true/false) and ``model_version``. Example: ``status=OK,endpoint=/v1/responses``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pydantic import JsonValue

from runtime.evaluation.job import ScorerRef
from runtime.protocol.call import Call

__all__ = ["FILTER_FIELDS", "Attachment", "CallFilter", "sampled"]

FILTER_FIELDS = ("status", "endpoint", "variant", "stream", "model_version")
_SCALE = float(1 << 64)


def sampled(trace_id: str, scorer_name: str, rate: float) -> bool:
    """True for about ``rate`` of trace ids, always the same answer for the same (trace, scorer)."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(f"{trace_id.removeprefix('tr-')}:{scorer_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE < rate


def _field_of(call: Call, name: str) -> str:
    if name == "stream":
        return "true" if call.stream else "false"
    if name == "model_version":
        return call.model.version or ""
    value = getattr(call, name)
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class CallFilter:
    conditions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> CallFilter:
        """Raise ``ValueError`` naming the bad part: filters are checked when attached, not per request."""
        conditions: list[tuple[str, str]] = []
        for part in (text or "").split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in FILTER_FIELDS:
                raise ValueError(
                    f"bad filter {part.strip()!r}: use field=value with a field among {FILTER_FIELDS}"
                )
            value = value.strip()
            conditions.append(
                (key, value.upper() if key == "status" else value.lower() if key == "stream" else value)
            )
        return cls(tuple(conditions))

    def matches(self, call: Call) -> bool:
        return all(_field_of(call, key) == value for key, value in self.conditions)

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.conditions)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A scorer attached to served traffic: by name (resolved by the worker's catalog), rate and filter."""

    name: str
    rate: float = 1.0
    filter: CallFilter = field(default_factory=CallFilter)
    args: dict[str, JsonValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"sample rate of {self.name!r} must be between 0 and 1, got {self.rate}")

    def wants(self, call: Call) -> bool:
        return (
            self.rate > 0.0
            and call.trace_id is not None
            and self.filter.matches(call)
            and sampled(call.trace_id, self.name, self.rate)
        )

    def ref(self) -> ScorerRef:
        return ScorerRef(name=self.name, args=self.args, rate=self.rate)
