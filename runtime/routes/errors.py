"""The one error renderer: every route and middleware answers errors through :func:`error_response`."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response

from runtime.errors import InternalError, RuntimeErrorBase, SchemaError

__all__ = ["error_body", "error_response", "schema_error"]

log = logging.getLogger("runtime.errors")


def _as_runtime_error(exc: BaseException) -> RuntimeErrorBase:
    if isinstance(exc, RuntimeErrorBase):
        return exc
    code = getattr(exc, "code", None)
    status = getattr(exc, "status", None)
    if isinstance(code, str) and isinstance(status, int):  # registry errors: same shape, no import cycle
        translated = RuntimeErrorBase(getattr(exc, "message", str(exc)))
        translated.code, translated.status = code, status
        translated.type = "invalid_request_error" if status < 500 else "server_error"
        return translated
    log.error("unhandled error", exc_info=exc)
    return InternalError("internal error")


def error_body(exc: BaseException, request_id: str | None) -> dict[str, Any]:
    err = _as_runtime_error(exc)
    return {
        "error": {
            "code": err.code,
            "message": err.message,
            "type": err.type,
            "param": err.param,
            "request_id": request_id,
        }
    }


def error_response(exc: BaseException, request_id: str | None) -> Response:
    err = _as_runtime_error(exc)
    headers = {"x-request-id": request_id} if request_id else {}
    headers.update(getattr(exc, "headers", None) or {})
    if err.retry_after is not None:
        headers["retry-after"] = f"{err.retry_after:g}"
    return Response(
        orjson.dumps(error_body(err, request_id)),
        status_code=err.status,
        media_type="application/json",
        headers=headers,
    )


def schema_error(exc: ValidationError) -> SchemaError:
    """A readable one-line summary of the first problems pydantic found."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg')}")
    first = exc.errors()[0].get("loc", ()) if exc.errors() else ()
    return SchemaError("; ".join(parts), param=".".join(str(p) for p in first) or None)
