"""Rules for alias names shared by model and prompt aliases."""

from __future__ import annotations

from registry.entities import check_name
from registry.errors import InvalidArgument

__all__ = ["check_alias"]

RESERVED_ALIASES = frozenset({"latest"})


def check_alias(alias: str) -> str:
    """Reject aliases that a URI could not tell apart from a version (``3``) or the built-in ``latest``."""
    check_name(alias, "alias")
    if alias.lower() in RESERVED_ALIASES or alias.isdigit():
        raise InvalidArgument(f"alias {alias!r} is reserved: aliases cannot be 'latest' or a number")
    return alias
