"""W3C Trace Context: the ``traceparent`` request header, so a request joins its caller's trace, and
``tracestate``, what the caller's tracing vendors pass along that trace.

A gateway or service that traces its own work sends ``traceparent: 00-<trace id>-<parent id>-<flags>``; the
request's root span then takes that trace id and records the caller's span as its (remote) parent, and the
trace the runtime returns (``x-runtime-trace-id``) is the caller's. A header that is not valid is ignored and
the request starts a trace of its own, as the specification asks: a broken header never fails a request.

Parsing follows https://www.w3.org/TR/trace-context/#traceparent-header: lowercase hex only, all-zero ids
and version ``ff`` invalid, version ``00`` exactly four fields, a later version at least four (what it adds
after them is not ours to read).

``tracestate`` (https://www.w3.org/TR/trace-context/#tracestate-header) is read only beside a valid
``traceparent``, and kept whole or not at all: at most 32 members ``key=value`` with the specification's
key and value grammar, no key twice. The runtime's own outgoing calls carry it on (see
``runtime.observability.spans.trace_headers``); it adds no member of its own.
"""

from __future__ import annotations

import re
from typing import TypeAlias

__all__ = ["RemoteParent", "VendorState", "format_traceparent", "parse_traceparent", "parse_tracestate"]

# version, trace id, parent id, flags; a later version may add fields after them ("-..."): kept to refuse
# them in version 00, not read.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_MAX_HEADER = 512  # far more than any version defines; longer is not a traceparent
_SAMPLED = 0x01
_KEY_CHARS = r"[a-z0-9_\-*/]"
_MEMBER = re.compile(
    rf"([a-z]{_KEY_CHARS}{{0,255}}|[a-z0-9]{_KEY_CHARS}{{0,240}}@[a-z]{_KEY_CHARS}{{0,13}})"
    r"=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)
_MAX_MEMBERS = 32


# (trace id as 32 lowercase hex, as ``Call.trace_id`` holds it; the caller's span id; whether the caller
# sampled it). A plain tuple: a NamedTuple's constructor costs ~200 ns, on every request that carries one.
RemoteParent: TypeAlias = tuple[str, int, bool]
# The caller's ``tracestate`` members, (key, value) in the order sent.
VendorState: TypeAlias = tuple[tuple[str, str], ...]


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


def parse_tracestate(value: str | None) -> VendorState | None:
    """The members of a ``tracestate`` value; None when there is none or it is not valid (then none of it
    is passed on, as the specification asks)."""
    if not value or len(value) > _MAX_HEADER * 2:
        return None
    members: list[tuple[str, str]] = []
    for part in value.split(","):
        member = part.strip(" \t")
        if not member:
            continue  # empty members are allowed, and mean nothing
        found = _MEMBER.fullmatch(member)
        if found is None:
            return None
        members.append((found.group(1), found.group(2)))
    keys = {key for key, _ in members}
    if not members or len(members) > _MAX_MEMBERS or len(keys) != len(members):
        return None
    return tuple(members)
