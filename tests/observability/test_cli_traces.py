"""``runtime traces list | show | tail`` against a store filled by a real app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.cli.main import main
from runtime.observability import SpanType, span
from tests.serving.agents import loaded


class Planner(ResponsesAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with span("plan", SpanType.AGENT):
            with span("chat gpt-test", SpanType.CHAT_MODEL) as llm:
                llm.set_usage(30, 12)
            with span("search", SpanType.TOOL):
                pass
        return ResponsesAgentResponse(output=[self.create_text_output_item("planned", "m1")])


@pytest.fixture
def stored(traced: Any, tmp_path: Path) -> tuple[str, list[str]]:
    app = traced(loaded(Planner(), "planner"))
    ids = [
        app.client.post("/v1/responses", json={"input": f"task {i}", "user": "ann" if i else "bob"}).headers[
            "x-runtime-trace-id"
        ]
        for i in range(3)
    ]
    app.flush()
    return f"sqlite:///{tmp_path / 'traces.db'}", ids


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_list_prints_a_table_newest_first(stored: tuple[str, list[str]], capsys: Any) -> None:
    url, ids = stored
    code, out = run(capsys, "traces", "list", "--store-url", url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["TRACE", "STARTED", "MODEL"]
    assert [line.split()[0] for line in lines[1:]] == list(reversed(ids))
    assert "planner" in lines[1] and "30/12" in lines[1]

    code, out = run(capsys, "traces", "list", "--store-url", url, "--user", "bob", "--json")
    assert code == 0
    assert [t["trace_id"] for t in json.loads(out)["traces"]] == [ids[0]]

    code, out = run(capsys, "traces", "list", "--store-url", url, "--limit", "2")
    assert "more: --page-token" in out


def test_show_prints_the_span_tree_with_timings_and_tokens(
    stored: tuple[str, list[str]], capsys: Any
) -> None:
    url, ids = stored
    code, out = run(capsys, "traces", "show", ids[1], "--store-url", url)
    assert code == 0, out
    assert f"trace    {ids[1]}" in out
    assert "tokens 30/12" in out
    assert "request  task 1" in out
    tree = out.split("\n\n", 1)[1].splitlines()
    assert tree[0].startswith("invoke_agent planner  [AGENT]")
    assert tree[1].startswith("└── plan  [AGENT]")
    assert tree[2].startswith("    ├── chat gpt-test  [CHAT_MODEL]") and "tokens 30/12" in tree[2]
    assert tree[3].startswith("    └── search  [TOOL]")
    assert all(" ms" in line for line in tree)

    code, out = run(capsys, "traces", "show", ids[1].removeprefix("tr-"), "--store-url", url, "--json")
    assert json.loads(out)["spans"][0]["children"][0]["name"] == "plan"


def test_show_unknown_or_malformed_ids(stored: tuple[str, list[str]], capsys: Any) -> None:
    url, _ = stored
    code, out = run(capsys, "traces", "show", "tr-" + "f" * 32, "--store-url", url)
    assert code == 1 and "not found" in out
    code, out = run(capsys, "traces", "show", "bogus", "--store-url", url)
    assert code == 2 and "not a trace id" in out


def test_tail_prints_recent_traces_oldest_first(stored: tuple[str, list[str]], capsys: Any) -> None:
    url, ids = stored
    code, out = run(capsys, "traces", "tail", "--store-url", url, "--max", "3", "--interval", "0.01")
    assert code == 0
    assert [line.split()[2] for line in out.splitlines()] == ids

    code, out = run(capsys, "traces", "tail", "--store-url", url, "--max", "1", "--json", "--user", "bob")
    assert json.loads(out)["trace_id"] == ids[0]

    # --since reaches past the window that later polls look back over.
    args = ("--max", "3", "--interval", "0.01", "--window", "0.001", "--since", "1h")
    code, out = run(capsys, "traces", "tail", "--store-url", url, *args)
    assert code == 0
    assert [line.split()[2] for line in out.splitlines()] == ids
