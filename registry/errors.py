"""Errors the registry raises on purpose, each with a stable ``code``, HTTP ``status`` and CLI ``exit_code``.

::

    RegistryError              code               status  exit
    ├── InvalidArgument        invalid_argument   400     2
    ├── NotFound               not_found          404     1
    ├── Conflict               conflict           409     1
    │   └── AlreadyExists      already_exists     409     1
    └── StoreUnavailable       store_unavailable  503     1

The registry is a leaf package and cannot use ``runtime.errors``; the runtime maps these by ``status`` and
``code`` at its boundary. Foreign errors (SQLAlchemy, pydantic, OS) are translated with ``raise ... from exc``
so callers only ever catch this tree.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "Conflict",
    "InvalidArgument",
    "NotFound",
    "RegistryError",
    "StoreUnavailable",
]


class RegistryError(Exception):
    """Base of every error the registry raises on purpose; ``message`` is one line, safe to show a user."""

    code = "registry_error"
    status = 500
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(RegistryError):
    code = "invalid_argument"
    status = 400
    exit_code = 2


class NotFound(RegistryError):
    code = "not_found"
    status = 404


class Conflict(RegistryError):
    code = "conflict"
    status = 409


class AlreadyExists(Conflict):
    code = "already_exists"


class StoreUnavailable(RegistryError):
    code = "store_unavailable"
    status = 503
