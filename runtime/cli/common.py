"""Small pieces every command group shares: key=value pairs, JSON files, tables, times, store options."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry import InvalidArgument
from registry.redaction import without_password

__all__ = [
    "alias",
    "check_redis_url",
    "configure_logging",
    "format_time",
    "json_file",
    "pairs",
    "store_options",
    "table",
]


def pairs(values: Sequence[str] | None, what: str) -> dict[str, str]:
    """``["k=v", ...]`` from repeated options, as a dict; a malformed item is a usage error."""
    result: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{what} {item!r} must look like key=value")
        result[key] = value
    return result


def json_file(path: str | None, what: str) -> Any:
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} {path!r}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InvalidArgument(f"{what} {path!r} is not valid JSON: {exc}") from exc


def format_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart: what a terminal reader scans fastest."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def store_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--store-url", default=default, help="registry store (env RUNTIME_STORE_URL)")
    parser.add_argument(
        "--artifact-root", default=default, help="artifact folder (env RUNTIME_ARTIFACT_ROOT)"
    )


def alias(
    args: argparse.Namespace,
    set_alias: Callable[[str, str, str], Any],
    delete_alias: Callable[[str, str], None],
) -> int:
    """``alias NAME ALIAS VERSION`` or ``alias --delete NAME ALIAS``: models and prompts read the same."""
    if args.delete:
        if args.version is not None:
            raise InvalidArgument("alias --delete takes NAME ALIAS, without a version")
        delete_alias(args.name, args.alias)
        return 0
    if args.version is None:
        raise InvalidArgument("alias needs NAME ALIAS VERSION (or --delete NAME ALIAS)")
    version = set_alias(args.name, args.alias, args.version)
    print(f"{args.name}@{args.alias} -> {version.version}")
    return 0


def configure_logging(level: str) -> None:
    """The process's log format and level; Alembic's per-plugin start-up lines only at debug level.

    ``level`` comes from ``Settings.log_level``, which only holds a valid level name."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def check_redis_url(url: str) -> None:
    """Raise ``InvalidArgument`` (exit code 2) when the Redis URL ``url`` can never work (a scheme other than
    redis, rediss or unix, a port or option that is not a number...): a start-up error of every command that
    uses Redis. Connects to nothing; the message never shows the URL's password."""
    from redis.connection import parse_url

    try:
        parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        reason = without_password(str(exc), url)
        raise InvalidArgument(f"invalid Redis URL (--redis-url or RUNTIME_REDIS_URL): {reason}") from None
