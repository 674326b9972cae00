"""Lineage both ways on traces a real server stored, through ``/api/lineage`` and ``runtime lineage``.

A model is logged with the CLI and ``--prompt`` URIs, registered and aliased, then served under uvicorn from
``models:/bot@champion``; its agent loads prompts per request. The store (SQLite and PostgreSQL) then answers:
model -> prompts, traces, scores; prompt version -> models, traces; trace -> model, prompts, assessments.
"""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry import LineageKind, RegistryClient
from registry.entities import Assessment, SourceType
from runtime.app import create_app
from runtime.cli.main import main
from runtime.config import Settings
from runtime.prompts import api as prompts_api
from tests.servers import ThreadServer

AGENT = textwrap.dedent(
    """
    from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse, set_agent
    from runtime.agents.chat import last_user_text
    from runtime.prompts import load_prompt


    class Prompted(ResponsesAgent):
        def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
            system = load_prompt("prompts:/system@production")
            draft = load_prompt("prompts:/draft/1")
            question = last_user_text(request.input)
            if question == "fail":
                raise RuntimeError("asked to fail")
            text = system.format() + " " + draft.format(q=question)
            usage = {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}
            return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")], usage=usage)


    set_agent(Prompted())
    """
)


@dataclass
class Served:
    url: str
    client: RegistryClient
    model_id: str
    traces: list[str]  # newest first
    cli: list[str]


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue().strip()


@pytest.fixture
def served(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    artifacts = tmp_path / "artifacts"
    locations = ["--store-url", store_url, "--artifact-root", str(artifacts)]
    monkeypatch.setenv("RUNTIME_STORE_URL", store_url)  # load_prompt while `models log` validates the agent
    with RegistryClient(store_url, artifacts) as client:
        client.register_prompt("system", "You are v1.")
        client.register_prompt("system", "You are v2.", commit_message="warmer")
        client.set_prompt_alias("system", "production", 2)
        client.register_prompt("draft", "Draft: {{ q }}")
        agent = tmp_path / "prompted.py"
        agent.write_text(AGENT)
        code, uri = _cli(
            "models", *locations, "log", str(agent), "--name", "bot",
            "--prompt", "prompts:/system@production", "--prompt", "prompts:/draft/1",
        )  # fmt: skip
        assert code == 0, uri
        assert _cli("models", *locations, "register", uri, "--name", "bot") == (0, "1")
        assert _cli("models", *locations, "alias", "bot", "champion", "1")[0] == 0

        settings = Settings.from_env(
            environ={},
            model="models:/bot@champion",
            home=str(tmp_path / "home"),
            store_url=store_url,
            artifact_root=str(artifacts),
        )
        app = create_app(settings)
        with ThreadServer(app) as server:
            for question in ("hello", "fail", "again"):
                r = httpx.post(
                    server.url + "/invocations", json={"input": [{"role": "user", "content": question}]}
                )
                assert r.status_code == (500 if question == "fail" else 200), r.text
            assert app.state.runtime.resources["observability"].flush(10)
            traces, _ = client.search_traces(model_id=uri.removeprefix("models:/"))
            assert len(traces) == 3
            yield Served(
                server.url, client, uri.removeprefix("models:/"), [t.trace_id for t in traces], locations
            )
    prompts_api.unconfigure()


def _lineage(served: Served, path: str, **params: Any) -> Any:
    r = httpx.get(served.url + path, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["lineage"]


def test_logging_with_prompts_writes_prompt_version_to_model_edges(served: Served) -> None:
    model = served.client.get_logged_model(served.model_id)
    assert model.prompts == ["prompts:/system/2", "prompts:/draft/1"]  # the alias, resolved when logged
    edges = served.client.get_lineage(LineageKind.MODEL, served.model_id, "upstream")
    assert {(e.src_kind, e.src_id) for e in edges} == {
        (LineageKind.PROMPT_VERSION, "prompts:/system/2"),
        (LineageKind.PROMPT_VERSION, "prompts:/draft/1"),
    }


def test_model_version_to_prompts_traffic_and_scores(served: Served) -> None:
    hello = served.traces[-1]
    served.client.log_assessment(Assessment(trace_id=hello, name="relevance", value=1.0))
    served.client.log_assessment(Assessment(trace_id=served.traces[0], name="relevance", value=0.5))
    served.client.log_assessment(
        Assessment(trace_id=hello, name="tone", value="warm", source_type=SourceType.HUMAN, rationale="kind")
    )

    view = _lineage(served, "/api/lineage", uri="models:/bot@champion", recent=2)
    assert (view["kind"], view["uri"]) == ("model", "models:/bot/1")
    assert view["model"] == {
        "model_id": served.model_id,
        "name": "bot",
        "status": "READY",
        "versions": ["bot/1"],
        "missing": False,
    }
    assert [(p["uri"], p["aliases"], p["commit_message"]) for p in view["prompts"]] == [
        ("prompts:/system/2", ["production"], "warmer"),
        ("prompts:/draft/1", [], None),
    ]
    traffic = view["traffic"]
    assert (traffic["count"], traffic["errors"]) == (3, 1)
    assert (traffic["input_tokens"], traffic["output_tokens"]) == (10, 14)
    assert traffic["mean_latency_ms"] > 0 and traffic["max_latency_ms"] >= traffic["mean_latency_ms"]
    assert [t["trace_id"] for t in traffic["recent"]] == served.traces[:2]
    scores = {s["name"]: s for s in view["scores"]}
    assert (scores["relevance"]["count"], scores["relevance"]["mean"]) == (2, 0.75)
    assert scores["tone"]["labels"] == {"warm": 1}

    assert _lineage(served, f"/api/lineage/logged-models/{served.model_id}", recent=2) == view | {
        "uri": f"models:/{served.model_id}"
    }
    assert _lineage(served, "/api/lineage/models/bot/versions/1", recent=2) == view


def test_prompt_version_to_models_and_traces(served: Served) -> None:
    view = _lineage(served, "/api/lineage/prompts/system/versions/2")
    assert (view["kind"], view["uri"]) == ("prompt_version", "prompts:/system/2")
    assert [(m["model_id"], m["versions"]) for m in view["models"]] == [(served.model_id, ["bot/1"])]
    assert view["traffic"]["count"] == 3  # the failed request had loaded it too
    assert {t["trace_id"] for t in view["traffic"]["recent"]} == set(served.traces)
    assert _lineage(served, "/api/lineage", uri="prompts:/system@production") == view

    unused = _lineage(served, "/api/lineage", uri="prompts:/system/1")
    assert (unused["models"], unused["traffic"]["count"], unused["traffic"]["recent"]) == ([], 0, [])


def test_trace_to_model_prompt_versions_and_assessments(served: Served) -> None:
    trace_id = served.traces[-1]
    served.client.log_assessment(
        Assessment(trace_id=trace_id, name="relevance", value=True, rationale="on topic")
    )
    view = _lineage(served, f"/api/lineage/traces/{trace_id}")
    assert (view["kind"], view["uri"], view["trace"]["status"]) == ("trace", trace_id, "OK")
    assert view["trace"]["input_tokens"] == 5 and view["trace"]["model_version"] == 1
    assert (view["model"]["model_id"], view["model"]["versions"]) == (served.model_id, ["bot/1"])
    assert [p["uri"] for p in view["prompts"]] == ["prompts:/system/2", "prompts:/draft/1"]
    assert [(a["name"], a["value"], a["rationale"]) for a in view["assessments"]] == [
        ("relevance", True, "on topic")
    ]


@pytest.mark.parametrize(
    ("params", "path", "status", "message"),
    [
        ({}, "/api/lineage", 400, "give the subject as ?uri="),
        ({"uri": "support"}, "/api/lineage", 400, "cannot show lineage of 'support'"),
        ({"uri": "models:/bot"}, "/api/lineage", 400, "malformed model URI"),
        ({"uri": "models:/bot@champion", "recent": "many"}, "/api/lineage", 400, "recent must be"),
        ({"uri": "prompts:/ghost/1"}, "/api/lineage", 404, "version 1 of prompt 'ghost' not found"),
        ({}, "/api/lineage/traces/tr-00000000000000000000000000000000", 404, "not found"),
        ({}, "/api/lineage/models/ghost/versions/1", 404, "not found"),
    ],
)
def test_bad_subjects_are_clear_errors(
    served: Served, params: dict[str, str], path: str, status: int, message: str
) -> None:
    r = httpx.get(served.url + path, params=params)
    assert r.status_code == status and message in r.json()["error"]["message"], r.text


def test_cli_prints_trees_and_the_api_view_as_json(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store-url", served.cli[1], "--artifact-root", served.cli[3]]
    served.client.log_assessment(Assessment(trace_id=served.traces[-1], name="relevance", value=0.5))

    code, text = _cli("lineage", "models:/bot@champion", *store, "--recent", "1")
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == f"model models:/bot/1  (bot, {served.model_id}, READY  registered as bot/1)"
    assert lines[1:4] == [
        "├── prompts",
        '│   ├── prompts:/system/2  aliases production  "warmer"',
        "│   └── prompts:/draft/1",
    ]
    assert (
        lines[4].startswith("├── traces  3 (1 error)  latency mean ") and "tokens 10 in / 14 out" in lines[4]
    )
    assert lines[5].startswith(f"│   ├── {served.traces[0]}  ") and lines[6] == "│   └── ... 2 more"
    assert lines[7:] == ["└── scores", "    └── relevance  1  mean 0.50"]

    code, text = _cli("lineage", "prompts:/draft/1", *store)
    assert text.splitlines()[1] == "├── models"
    assert text.splitlines()[2] == f"│   └── bot, {served.model_id}, READY  registered as bot/1"

    code, text = _cli("lineage", served.traces[-1], *store)
    assert text.splitlines()[0].startswith(f"trace {served.traces[-1]}  ")
    assert "└── relevance = 0.5  (CODE)" in text

    code, raw = _cli("lineage", "prompts:/system/2", *store, "--json", "--recent", "10")
    assert json.loads(raw) == _lineage(served, "/api/lineage", uri="prompts:/system/2")

    assert main(["lineage", "prompts:/ghost/1", *store]) == 1
    assert main(["lineage", "nonsense", *store]) == 2
    assert main(["lineage", "models:/bot/1", "--recent", "-1", *store]) == 2
    err = capsys.readouterr().err
    assert (
        "error: version 1 of prompt 'ghost' not found" in err and "cannot show lineage of 'nonsense'" in err
    )
