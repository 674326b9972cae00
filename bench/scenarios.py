"""What is sent: one scenario per endpoint and mode, with the request body each server accepts."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.servers import ServerSpec

__all__ = ["DEFAULT_SCENARIOS", "SCENARIOS", "Scenario"]


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "invocations" | "responses": which endpoint of the server
    stream: bool

    def path(self, server: ServerSpec) -> str | None:
        """The URL path on ``server``, or None when the server cannot serve this scenario."""
        if self.stream and not server.streams:
            return None
        return server.paths.get(self.kind)

    def body(self, server: ServerSpec) -> str:
        messages = [{"role": "user", "content": "hello"}]
        payload: dict[str, object]
        if self.kind == "invocations":
            payload = {"input": messages}
        else:
            payload = {"model": "echo", "input": "hello" if server.string_input else messages}
        if self.stream:
            payload["stream"] = True
        return json.dumps(payload, separators=(",", ":"))


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario("invocations", "invocations", stream=False),
        Scenario("responses", "responses", stream=False),
        Scenario("responses-stream", "responses", stream=True),
        Scenario("invocations-stream", "invocations", stream=True),
    )
}
DEFAULT_SCENARIOS = ("invocations", "responses", "responses-stream")
