"""Auto-tracing of the official openai SDK inside served agents, against a fake OpenAI server on loopback."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.observability.autotrace import instrument_openai, is_instrumented, uninstrument_openai
from tests.fakes.openai_server import FakeLLM, Reply, Usage
from tests.observability.conftest import root_of
from tests.serving.agents import loaded


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM.running() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(llm: FakeLLM) -> None:
    llm.reset(Reply(text="Paris is sunny", usage=Usage(input_tokens=11, output_tokens=7)))


def text_of(messages: ResponsesAgentRequest) -> str:
    return str(messages.input[-1]["content"])


class OpenAIAgent(ResponsesAgent):
    """Calls the LLM through the openai SDK in one of eight ways, reports no usage of its own."""

    def __init__(self, base_url: str, api: str, stream: bool, use_async: bool) -> None:
        self.base_url = base_url
        self.api = api
        self.stream = stream
        self.use_async = use_async

    def _kwargs(self, request: ResponsesAgentRequest) -> dict[str, Any]:
        if self.api == "chat":
            kwargs: dict[str, Any] = {
                "model": "gpt-test",
                "messages": [{"role": "user", "content": text_of(request)}],
                "temperature": 0.2,
            }
            if self.stream:
                kwargs["stream_options"] = {"include_usage": True}
        else:
            kwargs = {"model": "gpt-test", "input": text_of(request), "instructions": "be brief"}
        return {**kwargs, "stream": self.stream} if self.stream else kwargs

    def _answer(self, text: str) -> ResponsesAgentResponse:
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")])

    def predict(self, request: ResponsesAgentRequest) -> Any:
        if self.use_async:
            return self._predict_async(request)
        with OpenAI(base_url=self.base_url, api_key="k") as client:
            target = client.chat.completions if self.api == "chat" else client.responses
            result = target.create(**self._kwargs(request))
            if not self.stream:
                return self._answer(_text(result))
            with result:
                return self._answer("".join(_delta(chunk) for chunk in result))

    async def _predict_async(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        async with AsyncOpenAI(base_url=self.base_url, api_key="k") as client:
            target = client.chat.completions if self.api == "chat" else client.responses
            result = await target.create(**self._kwargs(request))
            if not self.stream:
                return self._answer(_text(result))
            async with result:
                return self._answer("".join([_delta(chunk) async for chunk in result]))


def _text(result: Any) -> str:
    return str(result.choices[0].message.content if hasattr(result, "choices") else result.output_text)


def _delta(chunk: Any) -> str:
    if getattr(chunk, "type", None) == "response.output_text.delta":
        return str(chunk.delta)
    choices = getattr(chunk, "choices", None)
    return str(choices[0].delta.content or "") if choices else ""


class AsyncPredict(OpenAIAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:  # type: ignore[override]
        return await self._predict_async(request)


def llm_spans(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get("runtime.span.type") == "CHAT_MODEL"]


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("use_async", [False, True])
def test_openai_calls_become_llm_spans_with_usage(
    traced: Any, llm: FakeLLM, api: str, stream: bool, use_async: bool
) -> None:
    agent_cls = AsyncPredict if use_async else OpenAIAgent
    app = traced(loaded(agent_cls(llm.base_url, api, stream, use_async), "caller"))
    r = app.client.post("/v1/responses", json={"input": "weather in Paris?"})
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["content"][0]["text"].strip() == "Paris is sunny"

    spans = app.spans.get_finished_spans()
    root = root_of(spans)
    [call] = llm_spans(spans)
    attrs = dict(call.attributes or {})
    assert call.name == "chat gpt-test"
    assert call.kind is SpanKind.CLIENT
    assert call.parent is not None and call.parent.span_id == root.context.span_id
    sent = llm.requests[-1].headers  # the upstream can trace under the LLM span
    assert sent["traceparent"] == f"00-{call.context.trace_id:032x}-{call.context.span_id:016x}-01"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-test"
    assert attrs["gen_ai.response.model"] == "gpt-test"
    assert attrs["gen_ai.request.stream"] is stream
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert str(attrs["gen_ai.response.id"]).startswith("chatcmpl-" if api == "chat" else "resp_")
    assert "weather in Paris?" in str(attrs["runtime.span.inputs"])
    assert attrs["runtime.span.outputs"] == "Paris is sunny"
    if stream:
        assert 0 < float(attrs["gen_ai.response.time_to_first_chunk"]) < 10  # type: ignore[arg-type]
        assert attrs["runtime.stream.completed"] is True
    if api == "chat":
        assert attrs["gen_ai.request.temperature"] == 0.2
        assert attrs["gen_ai.response.finish_reasons"] == ("stop",)

    root_attrs = root.attributes or {}  # the agent reported no usage: the LLM span's counts
    assert (root_attrs["gen_ai.usage.input_tokens"], root_attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert root_attrs["runtime.usage.estimated"] is False
    assert r.json()["usage"]["input_tokens"] == 11


class EarlyClose(ResponsesAgent):
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with OpenAI(base_url=self.base_url, api_key="k") as client:
            stream = client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            with stream:
                first = next(iter(stream))
        return ResponsesAgentResponse(output=[self.create_text_output_item(str(first.id), "m1")])


def test_a_stream_closed_early_ends_its_span_incomplete(traced: Any, llm: FakeLLM) -> None:
    app = traced(loaded(EarlyClose(llm.base_url), "early"))
    assert app.client.post("/v1/responses", json={"input": "hi"}).status_code == 200
    [call] = llm_spans(app.spans.get_finished_spans())
    assert (call.attributes or {})["runtime.stream.completed"] is False


class Failing(ResponsesAgent):
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        async with AsyncOpenAI(base_url=self.base_url, api_key="k", max_retries=0) as client:
            with pytest.raises(openai.InternalServerError):
                await client.responses.create(model="gpt-test", input="hi")
        return ResponsesAgentResponse(output=[self.create_text_output_item("recovered", "m1")])

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        yield {"type": "response.output_item.done", "item": (await self.predict(request)).output[0]}


def test_a_failed_call_is_an_error_span(traced: Any, llm: FakeLLM) -> None:
    llm.reset(Reply(fail=500))
    app = traced(loaded(Failing(llm.base_url), "failing"))
    assert app.client.post("/v1/responses", json={"input": "hi"}).status_code == 200
    [call] = llm_spans(app.spans.get_finished_spans())
    assert call.status.status_code is StatusCode.ERROR
    assert (call.attributes or {})["error.type"] == "InternalServerError"


def test_autotrace_off_means_no_llm_spans(traced: Any, llm: FakeLLM) -> None:
    app = traced(loaded(OpenAIAgent(llm.base_url, "chat", False, False), "caller"), autotrace=False)
    assert not is_instrumented()
    app.client.post("/v1/responses", json={"input": "hi"})
    spans = app.spans.get_finished_spans()
    assert llm_spans(spans) == []
    assert (root_of(spans).attributes or {})["runtime.usage.estimated"] is True


def test_patch_is_idempotent_reference_counted_and_inert_outside_requests(llm: FakeLLM) -> None:
    original = openai.resources.chat.completions.Completions.create
    assert instrument_openai() and instrument_openai()
    patched = openai.resources.chat.completions.Completions.create
    assert patched is not original
    with OpenAI(base_url=llm.base_url, api_key="k") as client:  # no request: the SDK works as before
        result = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert result.usage is not None and result.usage.prompt_tokens == 11
    uninstrument_openai()
    assert openai.resources.chat.completions.Completions.create is patched  # one user left
    uninstrument_openai()
    assert openai.resources.chat.completions.Completions.create is original
    uninstrument_openai()  # one too many: harmless
    assert not is_instrumented()


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True])
def test_the_builtin_llm_agent_records_llm_spans_with_real_usage(
    traced: Any, llm: FakeLLM, api: str, stream: bool
) -> None:
    from runtime.agents.builtin import OpenAICompatibleAgent

    agent = OpenAICompatibleAgent(
        llm.base_url, "gpt-test", "k", api="responses" if api == "responses" else "chat"
    )
    app = traced(loaded(agent, "builtin"))
    r = app.client.post("/v1/responses", json={"input": "weather?", "stream": stream})
    assert r.status_code == 200
    spans = app.spans.get_finished_spans()
    root = root_of(spans)
    [call] = llm_spans(spans)
    attrs = call.attributes or {}
    assert call.name == "chat gpt-test"
    assert call.parent is not None and call.parent.span_id == root.context.span_id
    sent = llm.requests[-1].headers  # the upstream can trace under the LLM span
    assert sent["traceparent"] == f"00-{call.context.trace_id:032x}-{call.context.span_id:016x}-01"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attrs["gen_ai.request.stream"] is stream
    assert (
        attrs["gen_ai.provider.name"] == "openai"
    )  # as the openai SDK's autotrace says: a required attribute
    assert f"http://{attrs['server.address']}:{attrs['server.port']}/v1" == llm.base_url
    assert "weather?" in str(attrs["runtime.span.inputs"])
    assert call.status.status_code is StatusCode.OK
    root_attrs = root.attributes or {}
    assert (root_attrs["gen_ai.usage.input_tokens"], root_attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert root_attrs["runtime.usage.estimated"] is False


LAZY_AGENT = """
from runtime.agents import ResponsesAgent, ResponsesAgentResponse, set_agent


class Lazy(ResponsesAgent):
    name = "lazy"

    def predict(self, request):
        from openai import OpenAI  # first imported here, long after the app started

        with OpenAI(base_url=BASE_URL, api_key="k") as client:
            reply = client.responses.create(model="gpt-test", input="hi")
        return ResponsesAgentResponse(output=[self.create_text_output_item(reply.output_text, "m1")])


set_agent(Lazy())
"""

SERVE_LAZILY = """
import sys
from pathlib import Path

from starlette.testclient import TestClient

from runtime.app import create_app
from tests.observability.conftest import capture_spans, settings_for

folder = Path(sys.argv[1])
app = create_app(settings_for(folder, model=str(folder / "lazy_agent.py")))
spans = capture_spans(app)
with TestClient(app) as client:
    assert "openai" not in sys.modules, "starting the app imported the openai SDK"
    assert client.post("/v1/responses", json={"input": "hi"}).status_code == 200
for span in spans.get_finished_spans():
    print(span.name, dict(span.attributes or {}).get("gen_ai.usage.input_tokens"))
"""


def test_an_sdk_imported_after_the_app_started_is_traced_and_never_imported_by_the_runtime(
    llm: FakeLLM, tmp_path: Path
) -> None:
    """Serving must not import openai (it costs more than the rest of a cold start); the agent's import
    of it is patched on the spot."""
    (tmp_path / "lazy_agent.py").write_text(f"BASE_URL = {llm.base_url!r}\n" + LAZY_AGENT)
    run = subprocess.run(
        [sys.executable, "-c", SERVE_LAZILY, str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stderr
    spans = dict(line.rsplit(" ", 1) for line in run.stdout.splitlines())
    assert spans["chat gpt-test"] == "11"  # the LLM span, with the usage the SDK saw
    assert "invoke_agent lazy" in spans


def test_the_import_hook_goes_with_the_last_user() -> None:
    code = (
        "import sys\n"
        "from runtime.observability.autotrace import instrument_openai, uninstrument_openai\n"
        "assert instrument_openai() and 'openai' not in sys.modules\n"
        "hooks = len(sys.meta_path)\n"
        "uninstrument_openai()\n"
        "assert len(sys.meta_path) == hooks - 1\n"
        "from openai.resources.responses import Responses\n"
        "assert not hasattr(Responses.create, '__runtime_autotrace_original__')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr


class OwnTraceparent(ResponsesAgent):
    """An agent that propagates a trace context of its own choosing: the runtime leaves it alone."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with OpenAI(base_url=self.base_url, api_key="k") as client:
            client.chat.completions.create(
                model="gpt-test",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"TraceParent": OWN, "x-team": "search"},
            )
            client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-team": "a"}
            )
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])


OWN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_traceparent_the_agent_sets_wins_and_its_other_headers_stay(traced: Any, llm: FakeLLM) -> None:
    app = traced(loaded(OwnTraceparent(llm.base_url), "own"))
    assert app.client.post("/v1/responses", json={"input": "hi"}).status_code == 200
    own, added = (r.headers for r in llm.requests[-2:])
    assert (own["traceparent"], own["x-team"]) == (OWN, "search")
    [_, second] = sorted(llm_spans(app.spans.get_finished_spans()), key=lambda s: s.start_time or 0)
    context = second.context
    assert added["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
    assert added["x-team"] == "a"


class FailingInside(Failing):
    """A tool span that fails with a message quoting its input, then a failed openai call, then the
    built-in agent's failed call: three ways an exception's text could reach a trace."""

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        from runtime.agents.builtin import OpenAICompatibleAgent
        from runtime.observability import SpanType, span

        with pytest.raises(ValueError), span("lookup", SpanType.TOOL):
            raise ValueError("no account for PRIVATE-TOOL-INPUT")
        async with AsyncOpenAI(base_url=self.base_url, api_key="k", max_retries=0) as client:
            with pytest.raises(openai.BadRequestError):
                await client.responses.create(model="gpt-test", input="hi")
        builtin = OpenAICompatibleAgent(self.base_url, "gpt-test", "k", api="chat")
        try:
            with pytest.raises(Exception, match="PRIVATE-PROMPT"):
                await builtin.predict(request)
        finally:
            await builtin.aclose()
        return ResponsesAgentResponse(output=[self.create_text_output_item("recovered", "m1")])


@pytest.mark.parametrize("capture", [True, False])
def test_exception_messages_reach_spans_only_when_content_is_captured(
    traced: Any, llm: FakeLLM, capture: bool
) -> None:
    llm.reset(Reply(fail=400, error_message="Invalid prompt: PRIVATE-PROMPT"))
    app = traced(loaded(FailingInside(llm.base_url), "failing"), capture_content=capture)
    assert app.client.post("/v1/responses", json={"input": "hi"}).status_code == 200
    app.flush()
    failed = [s for s in app.spans.get_finished_spans() if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 3
    text = " ".join(
        f"{s.status.description} {[(e.name, dict(e.attributes or {})) for e in s.events]}" for s in failed
    )
    stored = str(
        [
            app.client.get(f"/api/traces/{t['trace_id']}").json()
            for t in app.client.get("/api/traces").json()["traces"]
        ]
    )
    for secret in ("PRIVATE-TOOL-INPUT", "PRIVATE-PROMPT"):
        assert (secret in text) is capture
        assert (secret in stored) is capture
    # The exception's type is kept either way: what failed, without what it said.
    assert "ValueError" in text and "BadRequestError" in text


class ParsesAndBreaks(ResponsesAgent):
    """Structured-output calls (``parse``) and a stream left after its first chunk without ``close``."""

    def __init__(self, base_url: str, use_async: bool) -> None:
        self.base_url = base_url
        self.use_async = use_async

    def predict(self, request: ResponsesAgentRequest) -> Any:
        if self.use_async:
            return self._predict_async()
        with OpenAI(base_url=self.base_url, api_key="k") as client:
            client.chat.completions.parse(model="gpt-parse", messages=[{"role": "user", "content": "hi"}])
            client.responses.parse(model="gpt-parse", input="hi")
            self._first_chunk_only(
                client.chat.completions.create(model="gpt-break", messages=[], stream=True)
            )
            gc.collect()  # the stream and its iterators hold each other: collected, not freed at once
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])

    @staticmethod
    def _first_chunk_only(stream: Any) -> None:
        for _ in stream:
            break  # no close: the stream is collected when this function returns

    async def _predict_async(self) -> ResponsesAgentResponse:
        async with AsyncOpenAI(base_url=self.base_url, api_key="k") as client:
            await client.chat.completions.parse(
                model="gpt-parse", messages=[{"role": "user", "content": "hi"}]
            )
            await client.responses.parse(model="gpt-parse", input="hi")
            stream = await client.chat.completions.create(model="gpt-break", messages=[], stream=True)
            async for _ in stream:
                break
            del stream
            for _ in range(3):  # the stream's generator, then the watched one it held: each closed by the
                gc.collect()  # loop's async-generator finalizer, in a task of its own
                await asyncio.sleep(0.01)
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])


@pytest.mark.parametrize("use_async", [False, True])
def test_parse_calls_and_streams_left_unclosed_are_traced(traced: Any, llm: FakeLLM, use_async: bool) -> None:
    app = traced(loaded(ParsesAndBreaks(llm.base_url, use_async), "parser"))
    r = app.client.post("/v1/responses", json={"input": "hi"})
    assert r.status_code == 200
    app.flush()
    calls = sorted(llm_spans(app.spans.get_finished_spans()), key=lambda s: s.start_time or 0)
    assert [s.name for s in calls] == ["chat gpt-parse", "chat gpt-parse", "chat gpt-break"]
    for parsed in calls[:2]:
        assert (parsed.attributes or {})["gen_ai.usage.input_tokens"] == 11
    assert (calls[2].attributes or {})["runtime.stream.completed"] is False
    assert r.json()["usage"]["input_tokens"] >= 22  # summed from the spans, not estimated


def test_time_to_first_chunk_of_a_responses_stream_is_to_its_first_output() -> None:
    from types import SimpleNamespace

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import INVALID_SPAN

    from runtime.observability.autotrace.llm_call import LLMCall
    from runtime.observability.context import RequestTracing

    request = RequestTracing(TracerProvider().get_tracer("t"), True, INVALID_SPAN)
    call = LLMCall(request, "responses", {"model": "m", "input": "hi", "stream": True})
    for kind in ("response.created", "response.in_progress"):  # at once, before the model has produced
        call.chunk(SimpleNamespace(type=kind, response=None))
    assert "gen_ai.response.time_to_first_chunk" not in (call.span.attributes or {})  # type: ignore[attr-defined]
    call.chunk(SimpleNamespace(type="response.output_text.delta", delta="Hi"))
    assert "gen_ai.response.time_to_first_chunk" in (call.span.attributes or {})  # type: ignore[attr-defined]
    call.end(completed=True)


CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
VENDORS = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


@pytest.mark.parametrize("builtin", [False, True], ids=["openai-sdk", "builtin-agent"])
def test_the_callers_tracestate_reaches_the_upstream_beside_the_llm_spans_traceparent(
    traced: Any, llm: FakeLLM, builtin: bool
) -> None:
    """W3C Trace Context: vendors along a trace pass ``tracestate`` on; the upstream got a traceparent
    under the LLM span and no tracestate."""
    from runtime.agents.builtin import OpenAICompatibleAgent

    agent = (
        OpenAICompatibleAgent(llm.base_url, "gpt-test", "k", api="chat")
        if builtin
        else OpenAIAgent(llm.base_url, "chat", False, False)
    )
    app = traced(loaded(agent, "caller"))
    parent = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
    sent: list[dict[str, str]] = []
    for vendors in (VENDORS, "Bad Key=1", None):
        headers = {"traceparent": parent} | ({"tracestate": vendors} if vendors else {})
        r = app.client.post("/v1/responses", json={"input": "weather?"}, headers=headers)
        assert r.status_code == 200, r.text
        sent.append(dict(llm.requests[-1].headers))
    # Without a traceparent a tracestate means nothing: the request starts its own trace, with none.
    alone = app.client.post("/v1/responses", json={"input": "weather?"}, headers={"tracestate": VENDORS})
    assert alone.status_code == 200
    sent.append(dict(llm.requests[-1].headers))

    assert sent[0]["tracestate"] == VENDORS
    assert all("tracestate" not in headers for headers in sent[1:])  # invalid: none of it goes on
    assert all(headers["traceparent"].startswith(f"00-{CALLER_TRACE}-") for headers in sent[:3])
    assert CALLER_TRACE not in sent[3]["traceparent"]
    calls = sorted(llm_spans(app.spans.get_finished_spans()), key=lambda s: s.start_time or 0)
    assert calls[0].context.trace_state.to_header() == VENDORS
    assert [len(c.context.trace_state) for c in calls[1:]] == [0, 0, 0]


@pytest.mark.parametrize("builtin", [False, True], ids=["openai-sdk", "builtin-agent"])
def test_a_request_the_sampler_drops_still_tells_the_upstream_it_is_not_sampled(
    traced: Any, llm: FakeLLM, builtin: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No span is recorded, yet the upstream gets the trace (flags ``00``) and its tracestate, as
    OpenTelemetry's instrumentations propagate unsampled contexts, so a parent-based upstream follows the
    decision instead of starting a trace of its own; the built-in agent sent nothing."""
    from runtime.agents.builtin import OpenAICompatibleAgent

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    agent = (
        OpenAICompatibleAgent(llm.base_url, "gpt-test", "k", api="chat")
        if builtin
        else OpenAIAgent(llm.base_url, "chat", False, False)
    )
    app = traced(loaded(agent, "caller"))
    caller = "00f067aa0ba902b7"
    headers = {"traceparent": f"00-{CALLER_TRACE}-{caller}-01", "tracestate": VENDORS}
    r = app.client.post("/v1/responses", json={"input": "weather?"}, headers=headers)
    assert r.status_code == 200, r.text
    sent = llm.requests[-1].headers
    version, trace, span_id, flags = sent["traceparent"].split("-")
    assert (version, trace, flags) == ("00", CALLER_TRACE, "00")
    assert span_id not in (caller, "0" * 16) and len(span_id) == 16
    assert sent["tracestate"] == VENDORS
    assert app.spans.get_finished_spans() == ()
