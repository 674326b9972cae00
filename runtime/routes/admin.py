"""Shared pieces of the JSON admin API under ``/api/``: the registry handle, admin auth, blocking calls.

Store calls block (SQLAlchemy), so they run in threads, each with a deadline (:mod:`runtime.store_calls`).
Writes need an admin key when ``RUNTIME_ADMIN_KEYS`` is set; reads follow the serving keys (checked by the
auth middleware).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from registry.client import RegistryClient
from runtime.errors import Forbidden, SchemaError
from runtime.routes.errors import schema_error
from runtime.routes.exchange import read_json
from runtime.state import runtime_state
from runtime.store_calls import store_call

__all__ = ["admin_body", "blocking", "registry_of", "require_admin"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def registry_of(request: Request) -> RegistryClient:
    client: RegistryClient = runtime_state(request).resources["registry"]
    return client


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A registry call, off the event loop and bounded in time (see :mod:`runtime.store_calls`)."""
    return await store_call(functools.partial(fn, *args, **kwargs))


def require_admin(request: Request) -> None:
    keys = runtime_state(request).settings.admin_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(token.strip().encode(), key.encode())
    if scheme.lower() != "bearer" or not ok:
        raise Forbidden("this operation needs an admin key (RUNTIME_ADMIN_KEYS)")


async def admin_body(request: Request, model: type[M]) -> M:
    """Admin check first, then the body: a caller without the key learns nothing about validation."""
    require_admin(request)
    body = await read_json(request, runtime_state(request).settings.max_body_bytes)
    if not isinstance(body, dict):
        raise SchemaError("request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise schema_error(exc) from exc
