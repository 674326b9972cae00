"""MLflow 3's agent server (``mlflow.genai.agent_server``) serving the bench echo agent.

Started as ``python -m uvicorn agent_server_app:app`` with this folder on PYTHONPATH, which is what
``AgentServer.run`` does. ``BENCH_MLFLOW_TRACING=false`` disables MLflow tracing (its best configuration);
``BENCH_SLOW_DELTAS`` > 0 streams that many deltas at 10 per second instead of 50 at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import mlflow
from echo_agent import AGENT, ITEM_ID
from mlflow.genai.agent_server import AgentServer, invoke, stream
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent

if os.environ.get("BENCH_MLFLOW_TRACING", "true") == "false":
    mlflow.tracing.disable()

SLOW_DELTAS = int(os.environ.get("BENCH_SLOW_DELTAS", "0"))


@invoke()
async def invoke_agent(request: ResponsesAgentRequest) -> ResponsesAgentResponse:
    return AGENT.predict(request)


async def _slow_stream() -> AsyncIterator[ResponsesAgentStreamEvent]:
    for index in range(SLOW_DELTAS):
        yield ResponsesAgentStreamEvent(**AGENT.create_text_delta(f"w{index} ", ITEM_ID))
        await asyncio.sleep(0.1)
    full = "".join(f"w{index} " for index in range(SLOW_DELTAS))
    yield ResponsesAgentStreamEvent(
        type="response.output_item.done", item=AGENT.create_text_output_item(full, ITEM_ID)
    )


@stream()
async def stream_agent(request: ResponsesAgentRequest) -> AsyncIterator[ResponsesAgentStreamEvent]:
    if SLOW_DELTAS:
        async for event in _slow_stream():
            yield event
        return
    for event in AGENT.predict_stream(request):
        yield event


app = AgentServer("ResponsesAgent").app
