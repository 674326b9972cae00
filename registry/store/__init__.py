"""The registry's SQL store; see :class:`SqlStore`."""

from __future__ import annotations

from registry.store.sql_store import SqlStore
from registry.store.traces_repo import TraceStats

__all__ = ["SqlStore", "TraceStats"]
