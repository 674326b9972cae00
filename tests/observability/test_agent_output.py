"""What an agent outputs is checked before it is sent, inside the call: output that is malformed or that JSON
cannot hold fails the request with 500 ``agent_error`` (a stream: an error event, then ``response.failed`` or
``[DONE]``), its trace says ERROR, and the answer carries the trace id. ``custom_outputs`` reach
``/v1/responses`` too, as MLflow's agent server sends them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from runtime.agents import ResponsesAgent
from tests.observability.conftest import root_of
from tests.serving.agents import loaded

MSG = {"input": [{"role": "user", "content": "hi"}]}


class Returns(ResponsesAgent):
    """Answers with ``output`` and ``custom`` (streamed by the runtime when asked to stream)."""

    def __init__(self, output: list[Any], custom: Any = None) -> None:
        self.output, self.custom = output, custom

    async def predict(self, request: Any) -> Any:
        return {"output": self.output, "custom_outputs": self.custom}


class Streams(ResponsesAgent):
    def __init__(self, events: list[Any]) -> None:
        self.events = events

    async def predict_stream(self, request: Any) -> Any:
        for event in self.events:
            yield event


GOOD = ResponsesAgent.create_text_output_item("fine", "m1")


def _failed_root(app: Any) -> Any:
    app.flush()
    root = root_of(app.spans.get_finished_spans())
    assert root.status.status_code is StatusCode.ERROR
    assert (root.attributes or {})["error.type"] == "agent_error"
    return root


@pytest.mark.parametrize(
    ("output", "custom", "shown", "logged"),
    [
        # what the agent got wrong is said in the answer, for the agent's author
        (
            [{"type": "message", "id": "m", "content": 5}],
            None,
            "output.0: a message's content must be a list",
            "",
        ),
        (
            [{"type": "message", "content": [{"type": "output_text", "text": 5}]}],
            None,
            "need a string text",
            "",
        ),
        ([{"type": "function_call", "id": "f", "call_id": "c"}], None, "function_call needs", ""),
        (["not an item"], None, "output.0: Input should be a valid dictionary", ""),
        # an exception's text stays in the log and the trace
        ([GOOD], {"when": object()}, "", "not JSON serializable"),
        ([GOOD], {"raw": b"bytes"}, "", "not JSON serializable"),
    ],
)
@pytest.mark.parametrize("path", ["/invocations", "/v1/responses"])
def test_bad_output_is_a_500_agent_error_with_a_failed_trace(
    traced: Any,
    caplog: pytest.LogCaptureFixture,
    path: str,
    output: list[Any],
    custom: Any,
    shown: str,
    logged: str,
) -> None:
    app = traced(loaded(Returns(output, custom), "bad"))
    r = app.client.post(path, json=MSG)
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "agent_error"
    assert r.headers["x-runtime-trace-id"].startswith("tr-")
    root = _failed_root(app)
    assert f"{root.context.trace_id:032x}" in r.headers["x-runtime-trace-id"]
    assert shown in r.json()["error"]["message"]
    if logged:
        assert logged in caplog.text
        assert logged not in r.text
        assert logged in str((root.attributes or {})["runtime.error.message"])


@pytest.mark.parametrize("path", ["/invocations", "/v1/responses"])
def test_a_stream_event_json_cannot_hold_ends_the_stream_cleanly(traced: Any, path: str) -> None:
    events = [
        ResponsesAgent.create_text_delta("so far", "m1"),
        {"type": "response.output_item.done", "item": {**GOOD, "extra": b"bytes"}},
        ResponsesAgent.create_text_delta("never sent", "m2"),
    ]
    app = traced(loaded(Streams(events), "bad-stream"))
    r = app.client.post(path, json={**MSG, "stream": True})
    assert r.status_code == 200
    data = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert "never sent" not in r.text
    if path == "/invocations":
        assert json.loads(data[-2])["code"] == "agent_error" and data[-1] == "[DONE]"
    else:
        last = [json.loads(d) for d in data[-2:]]
        assert [e["type"] for e in last] == ["error", "response.failed"]
        assert last[1]["response"]["status"] == "failed"
    _failed_root(app)


def test_custom_outputs_reach_the_responses_api(traced: Any) -> None:
    app = traced(loaded(Returns([GOOD], {"score": 1, "tags": ["a"]}), "custom"))
    plain = app.client.post("/v1/responses", json=MSG).json()
    assert plain["custom_outputs"] == {"score": 1, "tags": ["a"]}
    streamed = app.client.post("/v1/responses", json={**MSG, "stream": True})
    completed = json.loads([line for line in streamed.text.splitlines() if line.startswith("data: ")][-1][6:])
    assert completed["type"] == "response.completed"
    assert completed["response"]["custom_outputs"] == {"score": 1, "tags": ["a"]}
    # a stream-only agent's, at the top level of its events as MLflow's ResponsesAgentStreamEvent has them
    final = {"type": "response.output_item.done", "item": GOOD, "custom_outputs": {"k": 2}}
    app = traced(loaded(Streams([final]), "stream-custom"))
    assert app.client.post("/invocations", json=MSG).json()["custom_outputs"] == {"k": 2}
    streamed = app.client.post("/v1/responses", json={**MSG, "stream": True})
    assert '"custom_outputs":{"k":2}' in streamed.text.splitlines()[-2]


@pytest.mark.parametrize(
    "last",
    [
        {"type": "response.output_item.done", "item": GOOD, "custom_outputs": {"raw": b"x"}},
        {"type": "response.completed", "response": {"custom_outputs": {"ids": {1, 2}}}},
    ],
)
def test_custom_outputs_json_cannot_hold_fail_the_stream_inside_the_call(traced: Any, last: Any) -> None:
    """They are sent on the final response.completed, after the agent is done: checked when they arrive."""
    app = traced(loaded(Streams([ResponsesAgent.create_text_delta("hi", "m1"), last]), "bad-custom"))
    r = app.client.post("/v1/responses", json={**MSG, "stream": True})
    kinds = [json.loads(line[6:])["type"] for line in r.text.splitlines() if line.startswith("data: ")]
    assert kinds[-2:] == ["error", "response.failed"]
    _failed_root(app)
