"""One exception tree for the whole runtime, each class with a stable ``code`` and HTTP ``status``.

::

    RuntimeErrorBase                      code            status  exit
    ├── BadRequest                        bad_request     400     2
    │   ├── InvalidJSON                   invalid_json    400
    │   ├── EmptyInput                    empty_input     400
    │   └── SchemaError                   invalid_schema  400
    ├── Unauthorized                      unauthorized    401
    ├── Forbidden                         forbidden       403
    ├── NotFound                          not_found       404     1
    ├── MethodNotAllowed                  method_not_allowed 405
    ├── Conflict                          conflict        409     1
    ├── PayloadTooLarge                   payload_too_large 413
    ├── UnsupportedMediaType              unsupported_media_type 415
    ├── Overloaded                        overloaded      429  (Retry-After)
    ├── Unavailable                       unavailable     503  (Retry-After)
    ├── AgentError                        agent_error     500     1
    │   └── AgentLoadError                agent_load_error 500    1
    ├── ClientClosedRequest               client_closed_request 499
    ├── Timeout                           timeout         504
    └── InternalError                     internal_error  500

Foreign errors (pydantic, httpx, redis, sqlalchemy) are translated at the boundary with
``raise ... from exc``. The renderer in :mod:`runtime.routes.errors` turns any of these into the one
error body; a 5xx never shows ``str(exc)`` of a foreign exception to a client, only our own message.
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "AgentLoadError",
    "BadRequest",
    "ClientClosedRequest",
    "Conflict",
    "EmptyInput",
    "Forbidden",
    "InternalError",
    "InvalidJSON",
    "MethodNotAllowed",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RuntimeErrorBase",
    "SchemaError",
    "Timeout",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
]


class RuntimeErrorBase(Exception):
    """Base of every error the runtime raises on purpose."""

    code = "runtime_error"
    status = 500
    type = "server_error"
    exit_code = 1

    def __init__(self, message: str, *, param: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.headers: dict[str, str] = {}  # e.g. the trace id of the request that failed


class BadRequest(RuntimeErrorBase):
    code = "bad_request"
    status = 400
    type = "invalid_request_error"
    exit_code = 2


class InvalidJSON(BadRequest):
    code = "invalid_json"


class EmptyInput(BadRequest):
    code = "empty_input"


class SchemaError(BadRequest):
    """A body that is JSON but not what the endpoint takes: 400, as OpenAI, MLflow and vLLM answer."""

    code = "invalid_schema"


class Unauthorized(RuntimeErrorBase):
    code = "unauthorized"
    status = 401
    type = "authentication_error"


class Forbidden(RuntimeErrorBase):
    code = "forbidden"
    status = 403
    type = "permission_error"


class NotFound(RuntimeErrorBase):
    code = "not_found"
    status = 404
    type = "not_found_error"


class MethodNotAllowed(RuntimeErrorBase):
    code = "method_not_allowed"
    status = 405
    type = "invalid_request_error"


class Conflict(RuntimeErrorBase):
    code = "conflict"
    status = 409
    type = "conflict_error"


class PayloadTooLarge(BadRequest):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(BadRequest):
    code = "unsupported_media_type"
    status = 415


class Overloaded(RuntimeErrorBase):
    code = "overloaded"
    status = 429
    type = "rate_limit_error"


class Unavailable(RuntimeErrorBase):
    code = "unavailable"
    status = 503
    type = "server_error"


class ShuttingDown(Unavailable):
    """The server was stopped (SIGTERM) and its grace period ran out before the call finished."""

    code = "shutting_down"


class AgentError(RuntimeErrorBase):
    """The agent's own code raised; the client sees our message, the trace and log keep the cause."""

    code = "agent_error"
    status = 500


class AgentLoadError(AgentError):
    code = "agent_load_error"


class ClientClosedRequest(RuntimeErrorBase):
    """The client went away before the answer (nginx's 499); nobody reads the body."""

    code = "client_closed_request"
    status = 499
    type = "invalid_request_error"


class Timeout(RuntimeErrorBase):
    code = "timeout"
    status = 504
    type = "timeout_error"


class InternalError(RuntimeErrorBase):
    code = "internal_error"
    status = 500
