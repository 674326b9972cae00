"""Online scoring of a real server's traffic: real requests, real stored traces, assessments, feedback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from registry.client import RegistryClient
from registry.entities import Assessment
from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.app import create_app
from runtime.cli.main import main
from runtime.evaluation.online import OnlineEvaluation
from runtime.evaluation.sampling import sampled
from runtime.observability import SpanType, span
from runtime.routes import assessments_api
from tests.evaluation import gates
from tests.evaluation.conftest import settings_for, write_scorers
from tests.fakes.openai_server import FakeLLM, Reply, Usage
from tests.servers import ROOT, ThreadServer, wait_until
from tests.serving.agents import AsyncEcho, loaded

SCORERS = """
from runtime.evaluation import builtin

@scorer
def polite(outputs: str) -> Feedback:
    return Feedback("please" in outputs.lower(), rationale="looked for please")

tools = builtin.no_tool_errors()
pii = builtin.no_pii()
fast = builtin.latency_slo(max_ms=10_000, name="fast")
"""


class Weather(ResponsesAgent):
    """Calls a tool that fails, then answers with an e-mail address in the text."""

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        try:
            with span("execute_tool get_weather", SpanType.TOOL):
                raise TimeoutError("weather service timed out")
        except TimeoutError:
            pass
        text = "Please note: it is 18C in Paris. Write to bob@example.com"
        return ResponsesAgentResponse(
            output=[self.create_text_output_item(text, "m1")], usage={"input_tokens": 3, "output_tokens": 9}
        )


def evaluation_of(app: Starlette) -> OnlineEvaluation:
    found = app.state.runtime.resources["evaluation"]
    assert isinstance(found, OnlineEvaluation)
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    """``server(agent, **settings)`` -> (app, url) of a started uvicorn server; stopped after the test."""
    running: list[ThreadServer] = []

    def start(agent: Any = None, **kw: Any) -> tuple[Starlette, str]:
        app = create_app(settings_for(tmp_path, **kw), agent=agent)
        srv = ThreadServer(app)
        srv.__enter__()
        running.append(srv)
        return app, srv.url

    yield start
    for srv in reversed(running):
        srv.__exit__(None, None, None)


def ask(url: str, text: str, **body: Any) -> str:
    r = httpx.post(f"{url}/v1/responses", json={"input": text, **body}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.headers["x-runtime-trace-id"])


def assessments(url: str, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(f"{url}/api/assessments", params=params, timeout=5).json()[
        "assessments"
    ]
    return found


def metric(url: str, line_start: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_live_requests_are_scored_on_their_stored_traces(server: Any, tmp_path: Path) -> None:
    scorers = write_scorers(tmp_path / "scorers.py", SCORERS)
    app, url = server(loaded(Weather(), "weather"), scorers=str(scorers))
    hooked: list[Assessment] = []
    evaluation_of(app).hooks.append(hooked.append)
    trace_id = ask(url, "weather in Paris?")
    assert wait_until(lambda: len(assessments(url, trace_id=trace_id)) == 4, timeout=15)
    found = {a["name"]: a for a in assessments(url, trace_id=trace_id)}
    assert found["polite"]["value"] is True and found["polite"]["source_type"] == "CODE"
    assert found["no_tool_errors"]["value"] is False
    assert "execute_tool get_weather" in found["no_tool_errors"]["rationale"]
    assert found["no_pii"]["value"] is False and "bob@example.com" not in found["no_pii"]["rationale"]
    assert found["fast"]["value"] is True
    assert {a["trace_id"] for a in found.values()} == {trace_id}
    assert all(a["span_id"] and a["assessment_id"].startswith("a-") for a in found.values())
    assert sorted(a.name for a in hooked) == sorted(found)

    # the trace shows its assessments, and the scores as gen_ai.evaluation.result events in the trace
    def evaluated() -> dict[str, Any] | None:
        body = httpx.get(f"{url}/api/traces/{trace_id}", timeout=5).json()
        [root] = body["spans"]
        return next((c for c in root["children"] if c["name"] == "evaluate"), None)

    assert wait_until(lambda: evaluated() is not None, timeout=10)
    node = evaluated()
    assert node is not None and node["span_type"] == "EVALUATOR"
    events = {e["attributes"]["gen_ai.evaluation.name"]: e for e in node["events"]}
    assert set(events) == set(found)
    assert {e["name"] for e in node["events"]} == {"gen_ai.evaluation.result"}
    assert events["no_tool_errors"]["attributes"]["gen_ai.evaluation.score.label"] == "fail"
    assert events["polite"]["attributes"]["gen_ai.evaluation.score.value"] == 1.0
    body = httpx.get(f"{url}/api/traces/{trace_id}", timeout=5).json()
    assert {a["name"] for a in body["assessments"]} == set(found)

    assert metric(url, "runtime_scoring_sampled_total") == 1
    assert metric(url, 'runtime_scoring_scored_total{scorer="polite"}') == 1


def test_human_feedback_over_http(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, url = server(loaded(AsyncEcho(), "echo"))
    hooked: list[Assessment] = []
    evaluation_of(app).hooks.append(hooked.append)
    trace_id = ask(url, "hello there")
    body = {"name": "helpful", "value": True, "rationale": "answered", "user": "ann"}
    r = httpx.post(f"{url}/api/traces/{trace_id}/feedback", json=body, timeout=10)  # waits for the trace
    assert r.status_code == 201, r.text
    created = r.json()["assessment"]
    assert (created["source_type"], created["source_id"], created["value"]) == ("HUMAN", "ann", True)
    assert [a.assessment_id for a in hooked] == [created["assessment_id"]]
    second = {"name": "helpful", "value": 0.5}
    assert (
        httpx.post(f"{url}/api/traces/{trace_id.removeprefix('tr-')}/feedback", json=second).status_code
        == 201
    )
    trace = httpx.get(f"{url}/api/traces/{trace_id}", timeout=5).json()
    assert sorted(a["source_id"] for a in trace["assessments"]) == ["ann", "anonymous"]
    [row] = httpx.get(f"{url}/api/assessments/summary", params={"trace_id": trace_id}).json()["summary"]
    assert (row["name"], row["kind"], row["count"], row["sources"]) == ("helpful", "mean", 2, {"HUMAN": 2})
    assert row["estimate"] == 0.75

    monkeypatch.setattr(assessments_api, "TRACE_WAIT", 0.3)
    unknown = httpx.post(f"{url}/api/traces/tr-{'0' * 32}/feedback", json=body, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert httpx.post(f"{url}/api/traces/nope/feedback", json=body).status_code == 404
    missing = httpx.post(f"{url}/api/traces/{trace_id}/feedback", json={"name": "helpful"})
    assert missing.status_code == 400 and "value" in missing.json()["error"]["message"]
    nested = httpx.post(f"{url}/api/traces/{trace_id}/feedback", json={"name": "x", "value": {"a": 1}})
    assert nested.status_code == 400
    assert httpx.get(f"{url}/api/assessments", params={"limit": "0"}).status_code == 400
    assert httpx.get(f"{url}/api/assessments", params={"trace_id": "bad"}).status_code == 400


def test_a_full_queue_skips_and_counts_without_slowing_requests(server: Any, tmp_path: Path) -> None:
    scorers = write_scorers(
        tmp_path / "slow.py",
        "from tests.evaluation import gates\n\n@scorer\ndef slow(outputs):\n"
        "    gates.started.set()\n    gates.release.wait(20)\n    return True\n",
    )
    gates.started.clear()
    gates.release.clear()
    _, url = server(
        loaded(AsyncEcho(), "echo"),
        scorers=str(scorers),
        scoring_queue_size=1,
        scoring_workers=1,
        tracing=False,
    )
    try:
        first = ask(url, "one")
        assert gates.started.wait(10)  # the only worker is busy with the first request's job
        queued = ask(url, "two")
        skipped = [ask(url, f"more {i}") for i in range(3)]
        assert metric(url, 'runtime_scoring_skipped_total{reason="queue_full"}') == 3
        assert metric(url, "runtime_scoring_sampled_total") == 2
        assert metric(url, "runtime_scoring_queue_depth") == 1
    finally:
        gates.release.set()
    assert wait_until(lambda: len(assessments(url, name="slow")) == 2, timeout=10)
    assert {a["trace_id"] for a in assessments(url, name="slow")} == {first, queued}
    assert not set(skipped) & {a["trace_id"] for a in assessments(url)}


def test_sample_rate_is_deterministic_by_trace_id(server: Any, tmp_path: Path) -> None:
    scorers = write_scorers(tmp_path / "s.py", "@scorer\ndef seen(outputs):\n    return True\n")
    _, url = server(loaded(AsyncEcho(), "echo"), scorers=str(scorers), sample_rate=0.5, tracing=False)
    traces = [ask(url, f"q{i}") for i in range(16)]
    expected = {t for t in traces if sampled(t, "seen", 0.5)}
    assert 0 < len(expected) < 16
    assert wait_until(lambda: {a["trace_id"] for a in assessments(url, name="seen")} == expected, timeout=10)


def test_attach_through_the_registry_reaches_a_running_server(
    server: Any, tmp_path: Path, client: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    model = client.log_model(ROOT / "examples" / "echo_agent.py", "echo")
    uri = f"models:/{model.model_id}"
    app, url = server(model=uri, scorer_poll_interval=0.1)
    store = ["--store-url", client.store_url]
    assert ask(url, "mail me at a@b.co")  # nothing attached yet: not scored, but the model is now watched
    assert (
        main(
            ["evaluate", "attach", uri, "--scorer", "no_pii", "--rate", "1", "--filter", "status=OK", *store]
        )
        == 0
    )
    assert main(["evaluate", "attach", uri, "--scorer", 'latency_slo:{"max_ms": 60000}', *store]) == 0
    assert "attached no_pii" in capsys.readouterr().out

    def scored(name: str) -> bool:  # the server reads attachments every 0.1 s; scoring follows each request
        ask(url, "mail me at a@b.co")  # asked again each time: one read may see only the first attachment
        return bool(assessments(url, name=name))

    assert wait_until(lambda: scored("no_pii"), timeout=30, interval=0.2)
    assert wait_until(lambda: scored("latency_slo"), timeout=30, interval=0.2)
    assert assessments(url, name="no_pii")[0]["value"] is False
    assert main(["evaluate", "attached", uri, "--json", *store]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {a["scorer"] for a in listed} == {"no_pii", "latency_slo"}
    assert main(["evaluate", "attach", uri, "--scorer", "no_pii", "--rate", "2", *store]) == 2
    assert main(["evaluate", "attach", uri, "--scorer", "no_pii", "--filter", "user=x", *store]) == 2

    # human feedback on the same name is counted in the same summary
    trace_id = assessments(url, name="no_pii")[0]["trace_id"]
    r = httpx.post(
        f"{url}/api/traces/{trace_id}/feedback", json={"name": "no_pii", "value": True, "user": "qa"}
    )
    assert r.status_code == 201
    capsys.readouterr()
    assert main(["evaluate", "summary", uri, "--json", *store]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["summary"]}
    assert rows["no_pii"]["kind"] == "pass_rate" and rows["no_pii"]["sources"]["HUMAN"] == 1
    assert rows["no_pii"]["sources"]["CODE"] >= 1 and rows["no_pii"]["low"] is not None
    assert main(["evaluate", "summary", uri, *store]) == 0
    assert "95% CI" in capsys.readouterr().out

    assert main(["evaluate", "detach", uri, "--scorer", "no_pii", *store]) == 0
    assert main(["evaluate", "detach", uri, "--scorer", "latency_slo", *store]) == 0
    board = evaluation_of(app).board
    assert wait_until(lambda: board.by_model.get(model.model_id) == (), timeout=5)
    capsys.readouterr()
    assert main(["evaluate", "attached", uri, *store]) == 0
    assert capsys.readouterr().out == ""


def test_a_served_app_scores_with_the_configured_llm_judge(server: Any, tmp_path: Path) -> None:
    scorers = write_scorers(
        tmp_path / "judged.py", "from runtime.evaluation import judges\n\nrelevant = judges.relevance()\n"
    )
    verdict = '{"result": "no", "rationale": "Off topic."}'
    with FakeLLM.running(Reply(text=verdict, usage=Usage(input_tokens=50, output_tokens=5))) as llm:
        _, url = server(
            loaded(AsyncEcho(), "echo"),
            scorers=str(scorers),
            judge_base_url=llm.base_url,
            judge_model="judge-1",
            judge_api_key="sk-served-secret",
            judge_prices="2,10",
        )
        trace_id = ask(url, "what is the weather")
        assert wait_until(lambda: bool(assessments(url, trace_id=trace_id)), timeout=15)
    [found] = assessments(url, trace_id=trace_id)
    assert (found["name"], found["value"], found["source_type"]) == ("relevance", False, "LLM_JUDGE")
    assert found["metadata"]["judge_cost_usd"] == pytest.approx((50 * 2 + 5 * 10) / 1e6)
    assert found["metadata"]["judge_prompt"] == "prompts:/judge.relevance/1"
    assert llm.requests[0].headers["authorization"] == "Bearer sk-served-secret"
    assert "sk-served-secret" not in json.dumps(found)
