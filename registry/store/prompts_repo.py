"""Prompts, their immutable versions and aliases.

Same numbering scheme as model versions (a counter bumped under the write lock). A version's template,
response format and model settings are frozen at registration; its tags and commit message stay editable,
the fix MLflow users ask for when a commit message had a typo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Select, func, select, update

from registry.entities import Prompt, PromptVersion, check_name, now_ms
from registry.errors import Conflict, InvalidArgument, NotFound
from registry.schemas import check_json_schema
from registry.store.engine import Database
from registry.store.naming import check_alias
from registry.store.tables import prompt_aliases, prompt_versions, prompts
from registry.templates import Template
from registry.uris import LATEST

__all__ = ["PromptsRepo", "alias_version", "like_regex"]


def like_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression equivalent of a SQL LIKE pattern (``%`` any run, ``_`` one character)."""
    parts = ("." if ch == "_" else ".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _checked(what: str, value: object, check: Callable[[object], None] | None = None) -> None:
    """``check`` the value, then that JSON can store it: failing inside the transaction is no clear error."""
    if check is not None:
        try:
            check(value)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{what} must hold only JSON values ({exc})") from exc


def alias_version(conn: Connection, name: str, alias: str) -> int:
    """The version ``alias`` of prompt ``name`` points at now (``latest``: the highest); else NotFound."""
    if alias == LATEST:
        version = conn.execute(
            select(func.max(prompt_versions.c.version)).where(prompt_versions.c.name == name)
        ).scalar_one()
        if version is None:
            raise NotFound(f"prompt {name!r} not found")
        return int(version)
    found = conn.execute(
        select(prompt_aliases.c.version).where(prompt_aliases.c.name == name, prompt_aliases.c.alias == alias)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"alias {alias!r} of prompt {name!r} not found")
    return int(found)


class PromptsRepo:
    _db: Database

    def create_prompt_version(
        self,
        name: str,
        template: Template,
        *,
        commit_message: str | None = None,
        tags: Mapping[str, str] | None = None,
        response_format: Mapping[str, Any] | None = None,
        model_settings: Mapping[str, Any] | None = None,
        first_only: bool = False,
    ) -> PromptVersion:
        """Validate fully before writing (bad templates change nothing), then take the next version number.

        The strict checks (schema shape, JSON-only values) run here, on the way in, rather than in the
        entity: rows written by an older, laxer release must stay readable. ``first_only``: write only if
        the prompt has no version yet, else raise :class:`Conflict` (several processes registering the same
        default at once make one version, not one each).

        ``tags`` are the version's and are also set on the prompt (merged into its tags), as MLflow's
        ``register_prompt`` does, so ``search_prompts("tags.team = 'cx'")`` finds what was registered
        with ``team=cx``.
        """
        check_name(name, "prompt name")
        if response_format is not None:
            _checked("response_format", response_format, check_json_schema)
        if model_settings is not None:
            _checked("model_config", model_settings)
        now = now_ms()
        draft = PromptVersion.model_validate(
            {
                "name": name,
                "version": 1,
                "template": template,
                "commit_message": commit_message,
                "tags": dict(tags or {}),
                "response_format": dict(response_format) if response_format is not None else None,
                "model_settings": dict(model_settings) if model_settings is not None else None,
                "creation_time": now,
                "last_updated_time": now,
            }
        )
        with self._db.write("register prompt version") as conn:
            conn.execute(
                self._db.insert_ignore(prompts, ["name"]).values(
                    name=name, tags={}, latest_version=0, creation_time=now, last_updated_time=now
                )
            )
            bump = update(prompts).where(prompts.c.name == name)
            if first_only:
                bump = bump.where(prompts.c.latest_version == 0)
            version = conn.execute(
                bump.values(latest_version=prompts.c.latest_version + 1, last_updated_time=now).returning(
                    prompts.c.latest_version
                )
            ).scalar_one_or_none()
            if version is None:
                raise Conflict(f"prompt {name!r} already has a version")
            if draft.tags:  # the bump above holds the prompt's row: no concurrent tag write is lost
                self._write_prompt_tags(conn, name, draft.tags, now)
            row = draft.model_dump(exclude={"variables", "aliases", "model_settings"}) | {
                "version": version,
                "model_config": draft.model_settings,
            }
            conn.execute(prompt_versions.insert().values(**row))
            return draft.model_copy(update={"version": version})

    def get_prompt_version(self, name: str, version: int) -> PromptVersion:
        with self._db.read("get prompt version") as conn:
            return self._prompt_version(conn, name, version)

    def get_prompt_version_by_alias(self, name: str, alias: str) -> PromptVersion:
        """``latest`` is built in: the highest version, whether or not an alias of that name exists."""
        with self._db.read("resolve prompt alias") as conn:
            return self._prompt_version(conn, name, alias_version(conn, name, alias))

    def list_prompt_versions(self, name: str) -> list[PromptVersion]:
        with self._db.read("list prompt versions") as conn:
            self._prompt(conn, name)
            versions = conn.execute(
                select(prompt_versions.c.version)
                .where(prompt_versions.c.name == name)
                .order_by(prompt_versions.c.version.desc())
            ).scalars()
            return [self._prompt_version(conn, name, v) for v in list(versions)]

    def get_prompt(self, name: str) -> Prompt:
        with self._db.read("get prompt") as conn:
            return self._prompt(conn, name)

    def search_prompts(
        self,
        *,
        name: str | None = None,
        name_like: str | None = None,
        case_sensitive: bool = True,
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
        limit: int = 1000,
    ) -> list[Prompt]:
        """``name_like`` is a SQL LIKE pattern; ``alias`` keeps prompts that have an alias of that name.

        LIKE is matched case-insensitively in SQL (SQLite and PostgreSQL disagree on case) and then, when
        ``case_sensitive``, re-checked in Python so both backends answer the same.
        """
        query = select(prompts.c.name).order_by(prompts.c.name)
        if name is not None:
            query = query.where(prompts.c.name == name)
        if name_like is not None:
            query = query.where(prompts.c.name.ilike(name_like))
        if alias is not None:
            query = query.where(
                prompts.c.name.in_(select(prompt_aliases.c.name).where(prompt_aliases.c.alias == alias))
            )
        names = list(self._db_names(query))
        if name_like is not None and case_sensitive:
            pattern = like_regex(name_like)
            names = [n for n in names if pattern.fullmatch(n)]
        wanted = dict(tags or {})
        with self._db.read("search prompts") as conn:
            found = [self._prompt(conn, n) for n in names]
        return [p for p in found if all(p.tags.get(k) == v for k, v in wanted.items())][:limit]

    def _db_names(self, query: Select[Any]) -> list[str]:
        with self._db.read("search prompts") as conn:
            return [str(name) for name in conn.execute(query).scalars()]

    def set_prompt_tag(self, name: str, key: str, value: str | None) -> Prompt:
        """Set a tag of the prompt itself (not of a version), or delete it when ``value`` is None."""
        with self._db.write("set prompt tag") as conn:
            self._prompt(conn, name)
            self._write_prompt_tags(conn, name, {key: value}, now_ms())
            return self._prompt(conn, name)

    def _write_prompt_tags(
        self, conn: Connection, name: str, changes: Mapping[str, str | None], now: int
    ) -> None:
        """Merge ``changes`` (None deletes) into the prompt's tags, reading them under a row lock."""
        current = conn.execute(
            select(prompts.c.tags).where(prompts.c.name == name).with_for_update()
        ).scalar_one()
        tags = {k: v for k, v in {**(current or {}), **changes}.items() if v is not None}
        conn.execute(update(prompts).where(prompts.c.name == name).values(tags=tags, last_updated_time=now))

    def set_prompt_version_tag(self, name: str, version: int, key: str, value: str | None) -> PromptVersion:
        """Set a tag, or delete it when ``value`` is None."""
        with self._db.write("set prompt version tag") as conn:
            current = self._prompt_version(conn, name, version)
            tags = {k: v for k, v in current.tags.items() if k != key}
            if value is not None:
                tags[key] = value
            self._edit_version(conn, name, version, tags=tags)
            return self._prompt_version(conn, name, version)

    def update_prompt_commit_message(self, name: str, version: int, message: str | None) -> PromptVersion:
        with self._db.write("update prompt commit message") as conn:
            self._prompt_version(conn, name, version)
            self._edit_version(conn, name, version, commit_message=message)
            return self._prompt_version(conn, name, version)

    def set_prompt_alias(self, name: str, alias: str, version: int) -> PromptVersion:
        check_alias(alias)
        with self._db.write("set prompt alias") as conn:
            self._prompt_version(conn, name, version)
            stmt = self._db.upsert(prompt_aliases, ["name", "alias"], ["version", "updated_time"])
            conn.execute(stmt.values(name=name, alias=alias, version=version, updated_time=now_ms()))
            return self._prompt_version(conn, name, version)

    def delete_prompt_alias(self, name: str, alias: str) -> None:
        with self._db.write("delete prompt alias") as conn:
            deleted = conn.execute(
                prompt_aliases.delete().where(prompt_aliases.c.name == name, prompt_aliases.c.alias == alias)
            )
            if deleted.rowcount == 0:
                raise NotFound(f"alias {alias!r} of prompt {name!r} not found")

    def _edit_version(self, conn: Connection, name: str, version: int, **values: Any) -> None:
        conn.execute(
            update(prompt_versions)
            .where(prompt_versions.c.name == name, prompt_versions.c.version == version)
            .values(**values, last_updated_time=now_ms())
        )

    def _prompt(self, conn: Connection, name: str) -> Prompt:
        row = conn.execute(select(prompts).where(prompts.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"prompt {name!r} not found")
        aliases = conn.execute(
            select(prompt_aliases.c.alias, prompt_aliases.c.version).where(prompt_aliases.c.name == name)
        ).all()
        latest = conn.execute(
            select(func.max(prompt_versions.c.version)).where(prompt_versions.c.name == name)
        ).scalar_one()
        return Prompt.model_validate(
            dict(row) | {"aliases": {a: v for a, v in aliases}, "latest_version": latest}
        )

    def _prompt_version(self, conn: Connection, name: str, version: int) -> PromptVersion:
        row = (
            conn.execute(
                select(prompt_versions).where(
                    prompt_versions.c.name == name, prompt_versions.c.version == version
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"version {version} of prompt {name!r} not found")
        aliases = conn.execute(
            select(prompt_aliases.c.alias)
            .where(prompt_aliases.c.name == name, prompt_aliases.c.version == version)
            .order_by(prompt_aliases.c.alias)
        ).scalars()
        data = dict(row)
        data["model_settings"] = data.pop("model_config")
        return PromptVersion.model_validate(data | {"aliases": list(aliases)})
