"""W3C Trace Context: the ``traceparent`` request header, so a request joins its caller's trace.

A gateway or service that traces its own work sends ``traceparent: 00-<trace id>-<parent id>-<flags>``; the
request's root span then takes that trace id and records the caller's span as its (remote) parent, and the
trace the runtime returns (``x-runtime-trace-id``) is the caller's. A header that is not valid is ignored and
the request starts a trace of its own, as the specification asks: a broken header never fails a request.

Parsing follows https://www.w3.org/TR/trace-context/#traceparent-header: lowercase hex only, all-zero ids
and version ``ff`` invalid, version ``00`` exactly four fields, a later version at least four (what it adds
after them is not ours to read).
"""

from __future__ import annotations

import re
from typing import TypeAlias

__all__ = ["RemoteParent", "format_traceparent", "parse_traceparent"]

# version, trace id, parent id, flags; a later version may add fields after them ("-..."): kept to refuse
# them in version 00, not read.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_MAX_HEADER = 512  # far more than any version defines; longer is not a traceparent
_SAMPLED = 0x01


# (trace id as 32 lowercase hex, as ``Call.trace_id`` holds it; the caller's span id; whether the caller
# sampled it). A plain tuple: a NamedTuple's constructor costs ~200 ns, on every request that carries one.
RemoteParent: TypeAlias = tuple[str, int, bool]


def parse_traceparent(value: str | None) -> RemoteParent | None:
    """The caller's trace and span from a ``traceparent`` value; None when there is none or it is invalid."""
    if not value or len(value) > _MAX_HEADER:
        return None
    found = _TRACEPARENT.fullmatch(value.strip())  # one C call: the header comes with every traced request
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, int(span_id, 16), bool(int(flags, 16) & _SAMPLED)


def format_traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    """The ``traceparent`` value that makes ``span_id`` the parent of what the receiver does."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"
