"""Trace query parameters as users write them, shared by ``GET /api/traces`` and ``runtime traces``.

Times may be epoch milliseconds, ISO 8601 (UTC unless an offset is given) or, relative to now, ``90s``,
``15m``, ``2h``, ``7d``. Trace ids may be given with or without their ``tr-`` prefix.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from runtime.errors import BadRequest

__all__ = ["normalize_trace_id", "parse_time_ms", "search_filters"]

_TRACE_ID = re.compile(r"^(tr-)?([0-9a-f]{32})$")
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STRING_FILTERS = ("model_id", "name", "session", "user", "prompt", "page_token")


def normalize_trace_id(value: str) -> str | None:
    """``tr-<32 hex>`` from either that or the bare OpenTelemetry hex id; None if it is neither."""
    match = _TRACE_ID.match(value.strip().lower())
    return f"tr-{match.group(2)}" if match else None


def parse_time_ms(value: str, param: str, now_ms: int | None = None) -> int:
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    relative = _RELATIVE.match(text)
    if relative:
        now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        return now - int(float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)] * 1000)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(
            f"{param} must be epoch milliseconds, an ISO 8601 time or a duration like 15m", param=param
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _number(value: Any, param: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{param} must be a number", param=param) from exc


def search_filters(params: Mapping[str, Any], default_limit: int = 100) -> dict[str, Any]:
    """Keyword arguments for the store's ``search_traces`` from query parameters or CLI options."""
    filters: dict[str, Any] = {k: str(params[k]) for k in _STRING_FILTERS if params.get(k)}
    if params.get("status"):
        filters["status"] = str(params["status"]).upper()
    for name in ("since", "until"):
        if params.get(name):
            filters[f"{name}_ms"] = parse_time_ms(str(params[name]), name)
    if params.get("min_latency_ms"):
        filters["min_latency_ms"] = _number(params["min_latency_ms"], "min_latency_ms", float)
    filters["limit"] = int(_number(params.get("limit") or default_limit, "limit", int))
    return filters
