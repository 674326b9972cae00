"""LoggedModels, registered models, their versions and aliases.

Version numbers come from a per-model counter bumped with ``UPDATE ... RETURNING`` inside the write
transaction: the row lock (PostgreSQL) or the database write lock (SQLite ``BEGIN IMMEDIATE``) makes
concurrent registrations queue, and the (name, version) primary key is the backstop. Numbers are never reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping, func, insert, select, update

from registry.entities import (
    GitSource,
    LoggedModel,
    ModelStatus,
    ModelVersion,
    RegisteredModel,
    check_name,
    now_ms,
)
from registry.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from registry.store.engine import Database
from registry.store.naming import check_alias
from registry.store.tables import logged_models, model_aliases, model_versions, registered_models

__all__ = ["ModelsRepo"]


def _logged_row(model: LoggedModel) -> dict[str, Any]:
    row = model.model_dump(exclude={"source"})
    row["status"] = model.status.value
    row["source_commit"] = model.source.commit if model.source else None
    row["source_dirty"] = model.source.dirty if model.source else None
    return row


def _logged(row: RowMapping) -> LoggedModel:
    data = dict(row)
    commit, dirty = data.pop("source_commit"), data.pop("source_dirty")
    data["source"] = GitSource(commit=commit, dirty=bool(dirty)) if commit else None
    return LoggedModel.model_validate(data)


class ModelsRepo:
    _db: Database

    # -- logged models -------------------------------------------------------------------------------------

    def create_logged_model(self, model: LoggedModel) -> LoggedModel:
        with self._db.write("create logged model") as conn:
            if not self._db.insert_new(conn, logged_models, ["model_id"], _logged_row(model)):
                raise AlreadyExists(f"logged model {model.model_id} already exists")
        return model

    def get_logged_model(self, model_id: str) -> LoggedModel:
        with self._db.read("get logged model") as conn:
            return self._logged_model(conn, model_id)

    def _logged_model(self, conn: Connection, model_id: str) -> LoggedModel:
        row = (
            conn.execute(select(logged_models).where(logged_models.c.model_id == model_id)).mappings().first()
        )
        if row is None:
            raise NotFound(f"logged model {model_id!r} not found")
        return _logged(row)

    def search_logged_models(
        self,
        name: str | None = None,
        status: ModelStatus | str | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
    ) -> list[LoggedModel]:
        """Newest first. Tag filtering happens after the SQL filter: tags are a JSON map, not a table."""
        query = select(logged_models).order_by(logged_models.c.creation_time.desc())
        if name is not None:
            query = query.where(logged_models.c.name == name)
        if status is not None:
            try:
                wanted_status = ModelStatus(status.upper() if isinstance(status, str) else status).value
            except ValueError:
                known = ", ".join(s.value for s in ModelStatus)
                raise InvalidArgument(f"unknown status {status!r}; one of {known}") from None
            query = query.where(logged_models.c.status == wanted_status)
        with self._db.read("search logged models") as conn:
            models = [_logged(row) for row in conn.execute(query).mappings()]
        wanted = dict(tags or {})
        models = [m for m in models if all(m.tags.get(k) == v for k, v in wanted.items())]
        return models[:limit]

    def finish_logged_model(
        self, model_id: str, status: ModelStatus, message: str | None = None
    ) -> LoggedModel:
        """Move PENDING to READY or FAILED, once: a finished model never changes state again."""
        with self._db.write("update logged model status") as conn:
            result = conn.execute(
                update(logged_models)
                .where(
                    logged_models.c.model_id == model_id, logged_models.c.status == ModelStatus.PENDING.value
                )
                .values(status=ModelStatus(status).value, status_message=message, last_updated_time=now_ms())
            )
            model = self._logged_model(conn, model_id)
            if result.rowcount == 0:
                raise Conflict(f"logged model {model_id} is already {model.status.value}")
            return model

    def update_logged_model(
        self,
        model_id: str,
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> LoggedModel:
        """Merge tags and metrics: those describe a model after the fact; params and code never change."""
        with self._db.write("update logged model") as conn:
            model = self._logged_model(conn, model_id)
            values = {
                "tags": {**model.tags, **(tags or {})},
                "metrics": {**model.metrics, **(metrics or {})},
                "last_updated_time": now_ms(),
            }
            checked = model.model_copy(update=values)
            LoggedModel.model_validate(checked.model_dump())
            conn.execute(update(logged_models).where(logged_models.c.model_id == model_id).values(**values))
            return checked

    # -- registered models ---------------------------------------------------------------------------------

    def create_registered_model(
        self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        check_name(name, "model name")
        now = now_ms()
        row = {"name": name, "description": description, "tags": dict(tags or {}), "latest_version": 0}
        row |= {"creation_time": now, "last_updated_time": now}
        with self._db.write("create registered model") as conn:
            if not self._db.insert_new(conn, registered_models, ["name"], row):
                raise AlreadyExists(f"registered model {name!r} already exists")
            return self._registered(conn, name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self._db.read("get registered model") as conn:
            return self._registered(conn, name)

    def list_registered_models(
        self, name_like: str | None = None, limit: int = 1000
    ) -> list[RegisteredModel]:
        query = select(registered_models.c.name).order_by(registered_models.c.name).limit(limit)
        if name_like is not None:
            query = query.where(registered_models.c.name.like(name_like))
        with self._db.read("list registered models") as conn:
            return [self._registered(conn, name) for name in conn.execute(query).scalars()]

    def _registered(self, conn: Connection, name: str) -> RegisteredModel:
        row = (
            conn.execute(select(registered_models).where(registered_models.c.name == name)).mappings().first()
        )
        if row is None:
            raise NotFound(f"registered model {name!r} not found")
        aliases = conn.execute(
            select(model_aliases.c.alias, model_aliases.c.version).where(model_aliases.c.name == name)
        ).all()
        latest = conn.execute(
            select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
        ).scalar_one()
        data = dict(row) | {"aliases": {a: v for a, v in aliases}, "latest_version": latest}
        return RegisteredModel.model_validate(data)

    # -- versions ------------------------------------------------------------------------------------------

    def create_model_version(
        self, name: str, model_id: str, tags: Mapping[str, str] | None = None
    ) -> ModelVersion:
        """Register a READY LoggedModel under ``name`` (created on first use) as the next version."""
        check_name(name, "model name")
        now = now_ms()
        with self._db.write("register model version") as conn:
            model = self._logged_model(conn, model_id)
            if model.status is not ModelStatus.READY:
                raise Conflict(
                    f"logged model {model_id} is {model.status.value}; only READY models can be registered"
                )
            conn.execute(
                self._db.insert_ignore(registered_models, ["name"]).values(
                    name=name, tags={}, latest_version=0, creation_time=now, last_updated_time=now
                )
            )
            version = conn.execute(
                update(registered_models)
                .where(registered_models.c.name == name)
                .values(latest_version=registered_models.c.latest_version + 1, last_updated_time=now)
                .returning(registered_models.c.latest_version)
            ).scalar_one()
            row = {
                "name": name,
                "version": version,
                "model_id": model_id,
                "tags": dict(tags or {}),
                "artifact_location": model.artifact_location,
                "creation_time": now,
            }
            conn.execute(insert(model_versions).values(**row))
            return ModelVersion.model_validate(row)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self._db.read("get model version") as conn:
            return self._model_version(conn, name, version)

    def get_latest_model_version(self, name: str) -> ModelVersion:
        with self._db.read("get latest model version") as conn:
            latest = conn.execute(
                select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
            ).scalar_one()
            if latest is None:
                raise NotFound(f"registered model {name!r} has no versions")
            return self._model_version(conn, name, latest)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self._db.read("resolve model alias") as conn:
            version = conn.execute(
                select(model_aliases.c.version).where(
                    model_aliases.c.name == name, model_aliases.c.alias == alias
                )
            ).scalar_one_or_none()
            if version is None:
                raise NotFound(f"alias {alias!r} of model {name!r} not found")
            return self._model_version(conn, name, version)

    def search_model_versions(
        self, name: str | None = None, model_id: str | None = None
    ) -> list[ModelVersion]:
        query = select(model_versions.c.name, model_versions.c.version).order_by(
            model_versions.c.name, model_versions.c.version.desc()
        )
        if name is not None:
            query = query.where(model_versions.c.name == name)
        if model_id is not None:
            query = query.where(model_versions.c.model_id == model_id)
        with self._db.read("search model versions") as conn:
            return [self._model_version(conn, n, v) for n, v in conn.execute(query).all()]

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> ModelVersion:
        with self._db.write("set model version tag") as conn:
            current = self._model_version(conn, name, version)
            conn.execute(
                update(model_versions)
                .where(model_versions.c.name == name, model_versions.c.version == version)
                .values(tags={**current.tags, key: value})
            )
            return self._model_version(conn, name, version)

    def _model_version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        row = (
            conn.execute(
                select(model_versions).where(
                    model_versions.c.name == name, model_versions.c.version == version
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"version {version} of model {name!r} not found")
        aliases = conn.execute(
            select(model_aliases.c.alias)
            .where(model_aliases.c.name == name, model_aliases.c.version == version)
            .order_by(model_aliases.c.alias)
        ).scalars()
        return ModelVersion.model_validate(dict(row) | {"aliases": list(aliases)})

    # -- aliases -------------------------------------------------------------------------------------------

    def set_model_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """One upsert moves the alias: readers see the old or the new target, never neither."""
        check_alias(alias)
        with self._db.write("set model alias") as conn:
            self._model_version(conn, name, version)
            stmt = self._db.upsert(model_aliases, ["name", "alias"], ["version", "updated_time"])
            conn.execute(stmt.values(name=name, alias=alias, version=version, updated_time=now_ms()))
            return self._model_version(conn, name, version)

    def move_model_alias(self, name: str, alias: str, version: int, expected: int) -> int | None:
        """Point ``alias`` at ``version`` only if it points at ``expected`` now, in one statement (no
        read-then-write window for someone else's move to fall into); return the version it pointed at:
        ``expected`` when it was moved, else where it points (None: not set), unchanged."""
        check_alias(alias)
        with self._db.write("move model alias") as conn:
            self._model_version(conn, name, version)
            moved = conn.execute(
                update(model_aliases)
                .where(
                    model_aliases.c.name == name,
                    model_aliases.c.alias == alias,
                    model_aliases.c.version == expected,
                )
                .values(version=version, updated_time=now_ms())
            )
            if moved.rowcount:
                return expected
            current: int | None = conn.execute(
                select(model_aliases.c.version).where(
                    model_aliases.c.name == name, model_aliases.c.alias == alias
                )
            ).scalar_one_or_none()
            return current

    def delete_model_alias(self, name: str, alias: str) -> None:
        with self._db.write("delete model alias") as conn:
            deleted = conn.execute(
                model_aliases.delete().where(model_aliases.c.name == name, model_aliases.c.alias == alias)
            )
            if deleted.rowcount == 0:
                raise NotFound(f"alias {alias!r} of model {name!r} not found")
