"""LLM judges against an OpenAI-compatible server on loopback, with prompts in the prompt registry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from registry.client import RegistryClient
from registry.entities import Assessment
from runtime.evaluation import judges
from runtime.evaluation.catalog import ScorerCatalog
from runtime.evaluation.engine import ScoringEngine
from runtime.evaluation.execution import ScorerRunner
from runtime.evaluation.job import ScorerRef, ScoringJob
from runtime.evaluation.judge_client import JudgeClient, JudgeConfig, JudgeError
from runtime.evaluation.judge_prompts import RegistryPrompts
from runtime.evaluation.judges import parse_verdict
from tests.evaluation.conftest import stored_trace
from tests.fakes.openai_server import FakeLLM, Reply, Usage

KEY = "sk-test-secret-key"
YES = '{"result": "yes", "rationale": "It answers the question."}'


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM.running(Reply(text=YES, usage=Usage(input_tokens=120, output_tokens=15))) as server:
        yield server


def judge_for(llm: FakeLLM, client: RegistryClient, **kw: Any) -> JudgeClient:
    config = JudgeConfig(
        base_url=llm.base_url,
        model="judge-model",
        api_key=KEY,
        backoff=0.01,
        input_price=1.0,
        output_price=4.0,
        **kw,
    )
    return JudgeClient(config, RegistryPrompts(client, ttl=0.0))


def score(client: RegistryClient, judge: JudgeClient, *refs: ScorerRef, **job: Any) -> dict[str, Assessment]:
    engine = ScoringEngine(
        ScorerCatalog(), client, runner=ScorerRunner(backoff=0.01), judge=judge, trace_wait=0
    )
    trace_id = stored_trace(client)

    async def run() -> list[Assessment]:
        try:
            return (await engine.process(ScoringJob(trace_id=trace_id, scorers=list(refs), **job))).stored
        finally:
            await engine.aclose()

    return {a.name: a for a in asyncio.run(run())}


def test_relevance_judge_records_verdict_usage_cost_and_prompt_version(
    llm: FakeLLM, client: RegistryClient
) -> None:
    judge = judge_for(llm, client)
    found = score(client, judge, ScorerRef(name="relevance"), inputs="Capital of France?", outputs="Paris.")
    a = found["relevance"]
    assert (a.value, a.rationale, a.source_type.value, a.error) == (
        True,
        "It answers the question.",
        "LLM_JUDGE",
        None,
    )
    assert a.metadata["judge_model"] == "judge-model"
    assert (a.metadata["judge_input_tokens"], a.metadata["judge_output_tokens"]) == (120, 15)
    assert a.metadata["judge_cost_usd"] == pytest.approx((120 * 1.0 + 15 * 4.0) / 1e6)
    assert a.metadata["judge_prompt"] == "prompts:/judge.relevance/1"
    # the default prompt was registered in the prompt registry, and it is what the judge was sent
    prompt = client.load_prompt("judge.relevance")
    assert prompt.version == 1 and prompt.tags == {"runtime.judge": "relevance"}
    [sent] = llm.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "judge-model" and sent.body["temperature"] == 0
    assert "<request>\nCapital of France?\n</request>" in sent.body["messages"][1]["content"]
    assert "<response>\nParis.\n</response>" in sent.body["messages"][1]["content"]
    # the key is used, never kept
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in a.model_dump_json() and KEY not in repr(judge) and KEY not in repr(judge.config)


def test_an_edited_prompt_version_is_used(llm: FakeLLM, client: RegistryClient) -> None:
    client.register_prompt(
        "judge.safety", [{"role": "user", "content": "Safe? {{ outputs }} -- answer yes or no"}]
    )
    found = score(client, judge_for(llm, client), ScorerRef(name="safety"), outputs="hello")
    assert found["safety"].metadata["judge_prompt"] == "prompts:/judge.safety/1"
    assert llm.requests[-1].body["messages"] == [
        {"role": "user", "content": "Safe? hello -- answer yes or no"}
    ]


def test_guidelines_and_correctness_judges(llm: FakeLLM, client: RegistryClient) -> None:
    judge = judge_for(llm, client)
    rules = ScorerRef(name="guidelines", args={"rules": ["Answer in one word", "Be polite"]})
    found = score(client, judge, rules, inputs={"question": "Capital?"}, outputs="Lyon")
    assert found["guidelines"].value is True
    assert "- Answer in one word\n- Be polite" in llm.requests[-1].body["messages"][1]["content"]
    assert (
        '<request>\n{"question": "Capital?"}\n</request>' in llm.requests[-1].body["messages"][1]["content"]
    )

    llm.reply = Reply(text='Sure: {"result": "no", "rationale": "It says Lyon."}')
    found = score(
        client,
        judge,
        ScorerRef(name="correctness"),
        inputs="Capital?",
        outputs="Lyon",
        expectations={"answer": "Paris"},
    )
    assert (found["correctness"].value, found["correctness"].rationale) == (False, "It says Lyon.")
    assert '<expected>\n{"answer": "Paris"}\n</expected>' in llm.requests[-1].body["messages"][1]["content"]


def test_transient_judge_failures_are_retried_with_backoff(llm: FakeLLM, client: RegistryClient) -> None:
    llm.script(Reply(fail=503), Reply(fail=500))
    found = score(client, judge_for(llm, client), ScorerRef(name="safety"), outputs="hi")
    assert found["safety"].value is True and found["safety"].metadata["judge_attempts"] == 3
    assert len(llm.requests) == 3


def test_judge_failures_become_assessment_errors(llm: FakeLLM, client: RegistryClient) -> None:
    llm.script(Reply(fail=400, error_message="bad model"), Reply(fail=503), Reply(fail=503), Reply(fail=503))
    judge = judge_for(llm, client, max_retries=2)
    first = score(client, judge, ScorerRef(name="relevance"), inputs="q", outputs="a")["relevance"]
    assert first.value is None and first.error == "JudgeError: judge endpoint answered 400: bad model"
    assert len(llm.requests) == 1  # not retried: a 400 will not get better
    second = score(client, judge, ScorerRef(name="relevance"), inputs="q", outputs="a")["relevance"]
    assert second.error == "JudgeError: judge endpoint answered 503: the fake LLM failed on purpose"
    assert len(llm.requests) == 4  # three attempts, and no second round of retries on top
    llm.reply = Reply(text="I think it's fine overall")
    third = score(client, judge, ScorerRef(name="relevance"), inputs="q", outputs="a")["relevance"]
    assert third.error is not None and "no yes/no verdict" in third.error
    llm.reply = Reply(fail="malformed")
    fourth = score(client, judge, ScorerRef(name="relevance"), inputs="q", outputs="a")["relevance"]
    assert fourth.error == "JudgeError: the judge endpoint answered without a chat completion"
    for a in (first, second, third, fourth):
        assert KEY not in a.model_dump_json()


def test_unreachable_judge_is_an_error_not_a_crash(client: RegistryClient) -> None:
    config = JudgeConfig(
        base_url="http://127.0.0.1:9/v1", model="m", api_key=KEY, max_retries=1, backoff=0.01
    )
    found = score(client, JudgeClient(config), ScorerRef(name="safety"), outputs="x")
    assert found["safety"].error == "JudgeError: judge endpoint unreachable: ConnectError"


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.active = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.active -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_judge_calls_are_bounded_in_concurrency(llm: FakeLLM, client: RegistryClient) -> None:
    llm.reply = Reply(text=YES, delay=0.05)
    transport = CountingTransport()
    judge = JudgeClient(JudgeConfig(base_url=llm.base_url, model="m", concurrency=2), transport=transport)

    async def run() -> None:
        try:
            await asyncio.gather(*(judge.complete([{"role": "user", "content": str(i)}]) for i in range(8)))
        finally:
            await judge.aclose()

    asyncio.run(run())
    assert len(llm.requests) == 8 and transport.peak == 2


def test_verdict_parsing() -> None:
    assert parse_verdict('```json\n{"result": "YES", "rationale": "ok"}\n```') == (True, "ok")
    assert parse_verdict('{"result": "no"}') == (False, None)
    assert parse_verdict("No. It is off topic.") == (False, "It is off topic.")
    with pytest.raises(JudgeError, match="no yes/no verdict"):
        parse_verdict('{"result": "maybe"}')
    with pytest.raises(ValueError, match="at least one guideline"):
        judges.guidelines([])
    assert JudgeConfig.parse_prices(" 0.15, 0.6 ") == (0.15, 0.6)
    assert JudgeConfig.parse_prices("") == (0.0, 0.0)
    with pytest.raises(ValueError, match="'input,output'"):
        JudgeConfig.parse_prices("0.15")


def test_a_default_judge_prompt_is_registered_once_however_many_ask_at_once(
    client: RegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent first uses (rows of `evaluate run`, replicas, workers) make one version, not one each."""
    import threading

    from registry.errors import NotFound

    prompts = [RegistryPrompts(client, ttl=0.0) for _ in range(4)]  # as four processes with their own cache
    all_missed = threading.Barrier(4)  # asyncio.to_thread has at least five threads
    load = client.load_prompt

    def load_then_wait(*args: Any, **kwargs: Any) -> Any:
        try:
            return load(*args, **kwargs)
        except NotFound:
            all_missed.wait(10)  # every one has found no prompt before any registers: the race, every time
            raise

    monkeypatch.setattr(client, "load_prompt", load_then_wait)

    async def first_uses() -> list[str | None]:
        loaded = await asyncio.gather(*(p.get("judge.correctness") for p in prompts))
        return [prompt.uri for prompt in loaded]

    assert asyncio.run(first_uses()) == ["prompts:/judge.correctness/1"] * 4
    assert client.load_prompt("judge.correctness").version == 1


def test_first_only_registration_refuses_a_prompt_that_has_a_version(client: RegistryClient) -> None:
    from registry.errors import Conflict

    client.register_prompt("greeting", "Hello {{name}}", first_only=True)
    with pytest.raises(Conflict, match="already has a version"):
        client.register_prompt("greeting", "Hi {{name}}", first_only=True)
    assert client.register_prompt("greeting", "Hi {{name}}").version == 2  # a plain registration still adds
