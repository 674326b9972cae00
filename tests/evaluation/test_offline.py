"""``runtime evaluate run``: two logged models over one dataset, traces stored, a paired comparison."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from scipy import stats

from registry.client import RegistryClient
from runtime.cli.main import main
from runtime.evaluation.offline import Progress, read_dataset
from runtime.evaluation.stats import mean_interval, paired_t_test, t_cdf, t_ppf, wilson_interval
from runtime.evaluation.summary import summarize
from tests.evaluation.conftest import write_scorers

AGENT = """
from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse, set_agent
from runtime.agents.chat import last_user_text

KNOWN = {known!r}


class Answer(ResponsesAgent):
    name = {name!r}

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        question = last_user_text(request.input)
        if question == "explode":
            raise RuntimeError("boom")
        text = KNOWN.get(question, "I do not know " + question)
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")])


set_agent(Answer())
"""

SCORERS = """
@scorer
def exact(outputs: str, expectations: dict) -> bool:
    return outputs == expectations["answer"]


@scorer
def length(outputs: str) -> float:
    return float(len(outputs))
"""

QUESTIONS = {f"q{i}": f"answer {i}" for i in range(12)}


def log_agent(client: RegistryClient, tmp_path: Path, name: str, known: dict[str, str]) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(AGENT.format(known=known, name=name))
    return f"models:/{client.log_model(path, name).model_id}"


@pytest.fixture
def setup(
    tmp_path: Path, client: RegistryClient, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, Path, Path]:
    monkeypatch.setenv("RUNTIME_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("RUNTIME_STORE_URL", client.store_url)
    weak = log_agent(
        client, tmp_path, "weak", {q: a for i, (q, a) in enumerate(QUESTIONS.items()) if i % 3 == 0}
    )
    strong = log_agent(
        client, tmp_path, "strong", {q: a for i, (q, a) in enumerate(QUESTIONS.items()) if i != 5}
    )
    data = tmp_path / "data.jsonl"
    rows = [{"inputs": q, "expectations": {"answer": a}} for q, a in QUESTIONS.items()]
    rows.append({"inputs": {"input": "explode"}, "expectations": {"answer": "-"}})
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    return weak, strong, data, write_scorers(tmp_path / "scorers.py", SCORERS)


def test_offline_run_with_comparison(
    setup: tuple[str, str, Path, Path], client: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    weak, strong, data, scorers = setup
    args = ["evaluate", "run", weak, "--data", str(data), "--scorers", str(scorers), "--compare", strong]
    assert main([*args, "--concurrency", "3", "--json"]) == 0
    captured = capsys.readouterr()
    assert "A: running [" in captured.err and "B: scoring [" in captured.err  # progress on stderr
    out = json.loads(captured.out)
    a, b = out["models"]
    assert (a["rows"], a["agent_errors"], b["agent_errors"]) == (13, 1, 1)
    assert a["trace_ids"][-1] is None and all(a["trace_ids"][:-1])

    # every row left a trace linked to its model, and its scores point at that trace
    weak_id = weak.removeprefix("models:/")
    traces, _ = client.search_traces(model_id=weak_id)
    assert len(traces) == 13 and {t.endpoint for t in traces} == {"evaluate"}  # the failed row too
    assert {t.status.value for t in traces} == {"OK", "ERROR"}
    stored = client.search_assessments(model_id=weak_id)
    assert len(stored) == 24 and {x.metadata["run_id"] for x in stored} == {out["run_id"]}
    summary = {row.name: row for row in summarize(stored)}
    assert summary["exact"].estimate == pytest.approx(4 / 12)
    assert {s["name"]: s["estimate"] for s in a["summary"]}["exact"] == pytest.approx(4 / 12)

    # the paired test agrees with scipy on the per-row values read back from the store
    def per_row(trace_ids: list[str | None], name: str) -> list[float]:
        values = []
        for trace_id in trace_ids[:-1]:
            [found] = client.search_assessments(trace_id=trace_id, name=name)
            values.append(float(found.value))  # type: ignore[arg-type]  # bool or number here
        return values

    compared = {c["name"]: c for c in out["comparison"]}
    for name in ("exact", "length"):
        xs, ys = per_row(a["trace_ids"], name), per_row(b["trace_ids"], name)
        expected = stats.ttest_rel(ys, xs)
        assert compared[name]["n"] == 12
        assert compared[name]["t"] == pytest.approx(expected.statistic, rel=1e-9)
        assert compared[name]["p_value"] == pytest.approx(expected.pvalue, rel=1e-7)
        interval = expected.confidence_interval()
        assert (compared[name]["low"], compared[name]["high"]) == pytest.approx((interval.low, interval.high))
    assert compared["exact"]["mean_difference"] == pytest.approx(11 / 12 - 4 / 12)

    # the table form, and the model's summary over everything scored so far
    assert main(["evaluate", "run", strong, "--data", str(data), "--scorers", str(scorers)]) == 0
    text = capsys.readouterr().out
    assert "13 rows, 1 agent errors" in text and "exact" in text and "pass 91.7%" in text
    assert main(["evaluate", "summary", strong, "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["summary"]}
    assert rows["exact"]["count"] == 24 and rows["exact"]["estimate"] == pytest.approx(22 / 24)


def test_bad_input_is_reported_before_anything_runs(
    setup: tuple[str, str, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weak, _, data, scorers = setup
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"inputs": "ok"}\n{"expectations": {}}\n')
    assert main(["evaluate", "run", weak, "--data", str(bad), "--scorers", str(scorers)]) == 2
    assert "bad.jsonl:2: a row is an object with non-empty 'inputs'" in capsys.readouterr().err
    assert main(["evaluate", "run", weak, "--data", str(data), "--scorer", "nope"]) == 2
    assert "no scorer named 'nope'" in capsys.readouterr().err
    assert main(["evaluate", "run", weak, "--data", str(data)]) == 2
    assert "name at least one --scorer" in capsys.readouterr().err
    assert main(["evaluate", "run", weak, "--data", str(data), "--scorer", "regex_match:[1]"]) == 2
    assert "must be a JSON object" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not JSON"):
        read_dataset(_write(tmp_path / "x.jsonl", "{oops\n"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_progress_without_a_terminal_prints_a_line_per_tenth() -> None:
    out = io.StringIO()
    bar = Progress(20, "run", stream=out, width=10)
    for _ in range(20):
        bar.advance()
    lines = out.getvalue().splitlines()
    assert lines[0] == "run [..........] 1/20"
    assert lines[-1] == "run [##########] 20/20" and len(lines) == 11


def test_statistics_match_scipy() -> None:
    for df in (1, 3, 12, 250):
        for t in (-4.0, -0.3, 0.0, 1.1, 7.5):
            assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-12)
        for p in (0.005, 0.3, 0.975):
            assert t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-8)
    low, high = stats.binomtest(7, 9).proportion_ci(method="wilson")
    interval = wilson_interval(7, 9)
    assert (interval.low, interval.high) == pytest.approx((low, high))
    assert wilson_interval(0, 5).low == 0.0 and wilson_interval(5, 5).high == 1.0
    values = [0.2, 0.5, 0.9, 0.4, 0.7]
    mean = mean_interval(values)
    expected = stats.t.interval(0.95, 4, loc=sum(values) / 5, scale=stats.sem(values))
    assert (mean.low, mean.high) == pytest.approx(expected)
    assert mean_interval([1.0]).low is None
    same = paired_t_test([1, 2, 3], [2, 3, 4])
    assert (same.mean_difference, same.p_value) == (1.0, 0.0)
    with pytest.raises(ValueError, match="same number"):
        paired_t_test([1, 2], [1])
