"""The HTTP contract of /invocations and /v1/responses against a real uvicorn server, with httpx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runtime.app import create_app
from runtime.config import Settings
from tests.servers import serve_app
from tests.serving.agents import AsyncEcho, BadOutput, Failing, SyncEcho, ToolCaller, loaded

MSG = {"input": [{"role": "user", "content": "hello big world"}]}


def settings(**kw: Any) -> Settings:
    return Settings(**{"sse_ping_interval": 0, **kw})


@pytest.fixture(scope="module", params=["async", "sync"])
def echo_url(request: pytest.FixtureRequest) -> Iterator[str]:
    agent = AsyncEcho() if request.param == "async" else SyncEcho()
    with serve_app(create_app(settings(), agent=loaded(agent, "echo"))) as url:
        yield url


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) per frame, parsed the way an SSE client does."""
    frames = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            frames.append((name, "\n".join(data)))
    return frames


def test_invocations_returns_mlflow_response_shape(echo_url: str) -> None:
    r = httpx.post(echo_url + "/invocations", json=MSG)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "response"
    assert body["output"][0]["content"][0] == {
        "type": "output_text",
        "text": "hello big world",
        "annotations": [],
    }
    assert r.headers["x-runtime-trace-id"].startswith("tr-")
    assert r.headers["x-request-id"]


def test_invocations_stream_frames_end_with_done(echo_url: str) -> None:
    r = httpx.post(echo_url + "/invocations", json={**MSG, "stream": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    frames = sse_events(r.text)
    assert all(name is None for name, _ in frames)  # MLflow framing: data only
    assert frames[-1][1] == "[DONE]"
    events = [json.loads(d) for _, d in frames[:-1]]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "hello big world "
    assert events[-1]["type"] == "response.output_item.done"


def test_responses_non_streaming_is_a_full_response_object(echo_url: str) -> None:
    r = httpx.post(
        echo_url + "/v1/responses", json={"input": "hi there", "model": "gpt-x", "metadata": {"k": "v"}}
    )
    body = r.json()
    assert r.status_code == 200
    assert body["id"].startswith("resp_")
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["model"] == "gpt-x"
    assert body["metadata"]["k"] == "v"
    assert body["metadata"]["trace_id"] == r.headers["x-runtime-trace-id"]
    assert body["output"][0]["status"] == "completed"
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"]


def test_responses_model_defaults_to_served_name(echo_url: str) -> None:
    assert httpx.post(echo_url + "/responses", json={"input": "x"}).json()["model"] == "echo"


def test_responses_stream_sequence_is_complete_and_numbered(echo_url: str) -> None:
    r = httpx.post(echo_url + "/v1/responses", json={"input": "a b", "stream": True})
    frames = sse_events(r.text)
    types = [name for name, _ in frames]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    events = [json.loads(d) for _, d in frames]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert all(e["type"] == name for e, (name, _) in zip(events, frames, strict=True))
    completed = events[-1]["response"]
    assert completed["status"] == "completed"
    assert completed["output"][0]["content"][0]["text"] == "a b"
    assert completed["usage"]["output_tokens"] > 0


def test_instructions_become_a_leading_system_message() -> None:
    seen: list[Any] = []

    class Spy(AsyncEcho):
        async def predict(self, request: Any) -> Any:
            seen.append(request.input)
            return await super().predict(request)

    with serve_app(create_app(settings(), agent=loaded(Spy()))) as url:
        httpx.post(url + "/v1/responses", json={"input": "q", "instructions": "be terse", "user": "u9"})
    assert seen[0][0] == {"role": "system", "content": "be terse"}
    assert seen[0][1] == {"role": "user", "content": "q"}


def test_function_calls_stream_as_added_arguments_done() -> None:
    with serve_app(create_app(settings(), agent=loaded(ToolCaller()))) as url:
        r = httpx.post(url + "/v1/responses", json={"input": "weather?", "stream": True})
    events = [json.loads(d) for _, d in sse_events(r.text)]
    fc = [e for e in events if e.get("output_index") == 0]
    assert [e["type"] for e in fc] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert fc[0]["item"]["arguments"] == ""
    assert fc[2]["arguments"] == '{"city":"Paris"}'
    final = events[-1]["response"]["output"]
    assert [item["type"] for item in final] == ["function_call", "function_call_output", "message"]


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", JSON, 400, "invalid_json"),
        (b"", JSON, 400, "empty_input"),
        (b'{"input": []}', JSON, 400, "empty_input"),
        (b'{"input": ""}', JSON, 400, "empty_input"),
        (b'{"input": 5}', JSON, 400, "invalid_schema"),
        (b"[1, 2]", JSON, 400, "invalid_schema"),
        (b'{"input": "x"}', {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (b'{"input": "x", "stream": "yes"}', JSON, 400, "invalid_schema"),
        (b'{"input": "x", "stream": 1}', JSON, 400, "invalid_schema"),
        (b'{"input": "x", "max_output_tokens": -1}', JSON, 400, "invalid_schema"),
        (b'{"input": "x", "temperature": 3}', JSON, 400, "invalid_schema"),
        (b'{"input": "x", "top_p": 1.5}', JSON, 400, "invalid_schema"),
        (b'{"input": "x", "max_output_tokens": "5"}', JSON, 400, "invalid_schema"),
        (b'{"input": "x", "temperature": "1"}', JSON, 400, "invalid_schema"),
        # input items as MLflow and OpenAI check them: what the agent is given is always readable
        (b'{"input": [{"role": "user"}]}', JSON, 400, "invalid_schema"),
        (b'{"input": [{"content": "no role"}]}', JSON, 400, "invalid_schema"),
        (b'{"input": [{"role": "robot", "content": "x"}]}', JSON, 400, "invalid_schema"),
        (
            b'{"input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]}',
            JSON,
            400,
            "invalid_schema",
        ),
        (b'{"input": [{"role": "user", "content": [5]}]}', JSON, 400, "invalid_schema"),
        (b'{"input": [{"type": "function_call_output", "call_id": "c1"}]}', JSON, 400, "invalid_schema"),
        (
            b'{"input": [{"type": "function_call", "call_id": "c1", "name": 5, "arguments": ""}]}',
            JSON,
            400,
            "invalid_schema",
        ),
        (b'{"input": ["text"]}', JSON, 400, "invalid_schema"),
        (b'{"input": [{"role": "user", "content": "x", "type": "bogus"}]}', JSON, 400, "invalid_schema"),
        (b"not json", {"content-type": "application/x-www-form-urlencoded"}, 400, "invalid_json"),
    ],
)
@pytest.mark.parametrize("path", ["/invocations", "/v1/responses"])
def test_bad_input_gets_one_error_body(
    echo_url: str, path: str, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    r = httpx.post(echo_url + path, content=body, headers={**headers, "x-request-id": "rid-1"})
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code
    assert err["request_id"] == "rid-1"
    if code == "invalid_schema" and b"[{" in body:
        assert err["message"].startswith("input: item 0") and err["param"] == "input"
    assert set(err) >= {"code", "message", "type", "request_id"}


def test_body_over_the_limit_is_413() -> None:
    with serve_app(create_app(settings(max_body_bytes=1000), agent=loaded(AsyncEcho()))) as url:
        big = {"input": [{"role": "user", "content": "x" * 2000}]}
        r = httpx.post(url + "/invocations", json=big)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        chunked = httpx.post(
            url + "/invocations",
            content=iter([json.dumps(big).encode()]),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413


def test_a_body_in_many_chunks_or_without_content_type_is_read_whole(echo_url: str) -> None:
    raw = json.dumps(MSG).encode()
    parts = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    chunked = httpx.post(
        echo_url + "/invocations", content=iter(parts), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 200
    assert chunked.json()["output"][0]["content"][0]["text"] == "hello big world"
    bare = httpx.post(echo_url + "/v1/responses", content=raw)  # no content type: taken as JSON
    assert bare.status_code == 200
    form = {"content-type": "application/x-www-form-urlencoded"}  # what curl -d sends without -H
    assert httpx.post(echo_url + "/invocations", content=raw, headers=form).status_code == 200
    assert bare.json()["output"][0]["content"][0]["text"] == "hello big world"
    empty = httpx.post(echo_url + "/v1/responses", content=raw, headers={"content-type": ""})
    assert empty.status_code == 200


def test_the_size_limit_holds_on_every_json_route() -> None:
    with serve_app(create_app(settings(max_body_bytes=1000), agent=loaded(AsyncEcho()))) as url:
        feedback = {"name": "x", "value": "y" * 2000}
        r = httpx.post(url + f"/api/traces/tr-{'0' * 32}/feedback", json=feedback)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"


def test_a_client_gone_mid_body_is_counted_as_499_and_the_server_goes_on() -> None:
    import socket

    with serve_app(create_app(settings(), agent=loaded(AsyncEcho()))) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            head = "POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            sock.sendall(f"{head}content-length: 500\r\n\r\n".encode() + b'{"input": [')
            time.sleep(0.2)
        metrics = ""
        for _ in range(50):
            metrics = httpx.get(url + "/metrics").text
            if 'status="499"' in metrics:
                break
            time.sleep(0.05)
        assert 'runtime_http_errors_total{endpoint="/invocations",status="499"} 1' in metrics
        assert httpx.post(url + "/invocations", json=MSG).status_code == 200


def test_the_starlette_app_without_its_front_still_serves_the_agent_routes() -> None:
    from starlette.testclient import TestClient

    front = create_app(settings(), agent=loaded(AsyncEcho()))
    with TestClient(front.app) as client:
        r = client.post("/invocations", json=MSG)
        assert r.status_code == 200
        assert r.json()["output"][0]["content"][0]["text"] == "hello big world"
        assert client.get("/invocations").status_code == 405


def test_agent_exception_is_500_without_stack_trace() -> None:
    with serve_app(create_app(settings(), agent=loaded(Failing()))) as url:
        for path in ("/invocations", "/v1/responses"):
            r = httpx.post(url + path, json=MSG)
            assert r.status_code == 500
            assert r.json()["error"]["code"] == "agent_error"
            assert "hunter2" not in r.text
            assert "Traceback" not in r.text


def test_invalid_agent_output_is_a_clear_500() -> None:
    with serve_app(create_app(settings(), agent=loaded(BadOutput()))) as url:
        r = httpx.post(url + "/invocations", json=MSG)
    assert r.status_code == 500
    assert "invalid response" in r.json()["error"]["message"]


def test_failure_after_first_byte_is_error_event_then_failed() -> None:
    with serve_app(create_app(settings(), agent=loaded(Failing()))) as url:
        r = httpx.post(url + "/v1/responses", json={"input": "x", "stream": True})
        frames = sse_events(r.text)
        names = [n for n, _ in frames]
        assert names[-2:] == ["error", "response.failed"]
        assert "response.output_text.delta" in names
        failed = json.loads(frames[-1][1])["response"]
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "agent_error"
        assert "hunter2" not in r.text

        r = httpx.post(url + "/invocations", json={**MSG, "stream": True}, headers={"x-request-id": "r7"})
        frames = sse_events(r.text)
        assert frames[-1][1] == "[DONE]"
        error = json.loads(frames[-2][1])
        assert error == {
            "type": "error",
            "code": "agent_error",
            "request_id": "r7",
            "message": "the agent failed while handling this request",
        }


def test_health_ready_version_models(echo_url: str) -> None:
    assert httpx.get(echo_url + "/health").json() == {"status": "ok"}
    assert httpx.get(echo_url + "/ready").json()["status"] == "ready"
    assert httpx.get(echo_url + "/version").json()["version"]
    models = httpx.get(echo_url + "/v1/models").json()
    assert models["data"][0]["id"] == "echo"


def test_unknown_route_and_method_use_the_error_body(echo_url: str) -> None:
    r = httpx.get(echo_url + "/nope")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    r = httpx.get(echo_url + "/invocations")
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")


def test_error_responses_carry_the_trace_id() -> None:
    with serve_app(create_app(settings(), agent=loaded(Failing()))) as url:
        r = httpx.post(url + "/v1/responses", json={"input": "x"})
    assert r.status_code == 500
    assert r.headers["x-runtime-trace-id"].startswith("tr-")
