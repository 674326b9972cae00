"""Bench agent shaped like LLM traffic: 10 deltas per second (``asyncio.sleep`` between them).

``BENCH_SLOW_DELTAS`` (default 300, i.e. 30 s) sets how many deltas each stream sends; it is read when the
agent is built, once per process.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse, set_agent

INTERVAL_S = 0.1
ITEM_ID = "msg_1"
USAGE = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}


class SlowStream(ResponsesAgent):
    def __init__(self) -> None:
        self.deltas = int(os.environ.get("BENCH_SLOW_DELTAS", "300"))

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        await asyncio.sleep(INTERVAL_S)
        return ResponsesAgentResponse(output=[self.create_text_output_item("slow", ITEM_ID)], usage=USAGE)

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[dict[str, Any]]:
        for index in range(self.deltas):
            yield self.create_text_delta(f"w{index} ", ITEM_ID)
            await asyncio.sleep(INTERVAL_S)
        full = "".join(f"w{index} " for index in range(self.deltas))
        yield {"type": "response.output_item.done", "item": self.create_text_output_item(full, ITEM_ID)}


set_agent(SlowStream())
