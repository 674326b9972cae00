"""``GET /metrics``: the Prometheus text exposition of the app's metrics."""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import NotFound
from runtime.observability.prometheus import CONTENT_TYPE
from runtime.observability.providers import Observability
from runtime.state import runtime_state

__all__ = ["metrics"]


async def metrics(request: Request) -> Response:
    observability = runtime_state(request).resources.get("observability")
    if not isinstance(observability, Observability) or observability.metrics is None:
        raise NotFound("metrics are disabled (RUNTIME_METRICS=false)")
    await anyio.to_thread.run_sync(observability.settle_metrics)  # may wait for the trace writer
    return Response(observability.metrics.render(), media_type=CONTENT_TYPE)
