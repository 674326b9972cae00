"""``SqlStore``: the registry's one database, SQLite by default and PostgreSQL for shared deployments.

Opening a store migrates it to the newest schema, so a file created by an older release keeps working. The
store is thread-safe (a pooled engine, one transaction per call); close it to release its connections.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import text

from registry.store import migrate
from registry.store.assessments_repo import AssessmentsRepo
from registry.store.canaries_repo import CanariesRepo
from registry.store.engine import Database
from registry.store.lineage_repo import LineageRepo
from registry.store.models_repo import ModelsRepo
from registry.store.prompts_repo import PromptsRepo
from registry.store.traces_repo import TracesRepo

__all__ = ["SqlStore"]


class SqlStore(ModelsRepo, PromptsRepo, TracesRepo, AssessmentsRepo, LineageRepo, CanariesRepo):
    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self._db = Database(url)
        self.url = url
        if upgrade:
            try:
                migrate.upgrade(self._db)
            except BaseException:
                self._db.dispose()
                raise

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def ping(self) -> None:
        """Readiness probe: raises ``StoreUnavailable`` when the database cannot answer a query."""
        with self._db.read("ping store") as conn:
            conn.execute(text("SELECT 1"))

    def schema_revision(self) -> str | None:
        return migrate.current_revision(self._db)

    def close(self) -> None:
        self._db.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
