"""The report every view shows, the verdict, and what the auto policy does with it."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.canary.model import CanaryDefinition, CanaryState, Status
from runtime.canary.policy import decide
from runtime.canary.report import build_report


def state(status: Status = Status.RUNNING, **fields: Any) -> CanaryState:
    values: dict[str, Any] = {
        "canary_id": "c-1",
        "model": "bot",
        "challenger_version": 2,
        "min_requests": 100,
    }
    d = CanaryDefinition.model_validate(values | fields)
    return CanaryState(definition=d, status=status, updated_ms=d.started_ms)


def counters(requests: int, errors: int = 0, **scores: tuple[int, float, float, int]) -> dict[str, float]:
    c: dict[str, float] = {
        "requests": requests,
        "ok": requests - errors,
        "errors": errors,
        "latency_sum": requests * 0.2,
        "latency_sq": requests * 0.05,
        "latency_hist:10": requests,
        "tokens_n": requests,
        "input_tokens": 2 * requests,
        "output_tokens": 3 * requests,
    }
    if errors:
        c["error:agent_error"] = errors
    for name, (n, total, total_sq, passed) in scores.items():
        c |= {f"score:{name}:n": n, f"score:{name}:sum": total, f"score:{name}:sq": total_sq}
        if passed >= 0:
            c |= {f"score:{name}:judged": n, f"score:{name}:passed": passed}
    return c


def test_variants_side_by_side_with_quantiles_rates_tokens_and_scores() -> None:
    a = counters(200, errors=4, helpful=(50, 40, 40, 40))
    b = counters(50, errors=1, helpful=(20, 18, 18, 18))
    report = build_report(state(), {"champion": a, "challenger": b})
    champion = report["variants"]["champion"]
    assert champion["requests"] == 200 and champion["error_rate"] == 0.02
    assert champion["errors_by_code"] == {"agent_error": 4}
    assert champion["latency_s"]["p50"] == pytest.approx(0.192)  # inside (0.128, 0.256]
    assert champion["tokens_per_request"] == {"input": 2, "output": 3, "total": 5}
    assert champion["scores"]["helpful"]["pass_rate"] == 0.8
    metrics = {row["metric"]: row for row in report["comparisons"]}
    assert set(metrics) == {"error_rate", "latency", "helpful"}
    assert metrics["helpful"]["primary"] and metrics["helpful"]["guarded"]
    assert metrics["error_rate"]["guarded"] and not metrics["latency"]["guarded"]
    assert report["verdict"]["verdict"] == "undecided"
    assert "50 of 100 requests" in report["verdict"]["reason"]


def test_a_significantly_worse_error_rate_is_a_rollback_whatever_the_sample_size() -> None:
    report = build_report(
        state(auto=True), {"champion": counters(120), "challenger": counters(40, errors=30)}
    )
    assert report["verdict"]["verdict"] == "worse" and report["verdict"]["decision"] == "rollback"
    assert report["verdict"]["reason"].startswith("challenger is worse on error_rate 75.0% vs 0.0%")
    decision = decide(state(auto=True), report, now_ms=0)
    assert decision is not None and decision.action == "rollback"
    assert decision.numbers["variants"]["challenger"]["errors"] == 30  # type: ignore[index]


def test_better_on_the_primary_metric_after_min_requests_is_a_promotion() -> None:
    report = build_report(
        state(auto=True), {"champion": counters(300, errors=150), "challenger": counters(300)}
    )
    assert report["verdict"]["verdict"] == "better" and report["verdict"]["decision"] == "promote"


def test_equal_and_not_worse_after_min_requests_is_promotable() -> None:
    report = build_report(state(auto=True), {"champion": counters(300), "challenger": counters(300)})
    assert report["verdict"]["verdict"] == "not_worse" and report["verdict"]["decision"] == "promote"


def test_a_guarded_score_that_drops_rolls_back() -> None:
    a = counters(400, helpful=(400, 360, 360, 360))
    b = counters(400, helpful=(400, 200, 200, 200))
    report = build_report(state(auto=True, guards=("helpful",)), {"champion": a, "challenger": b})
    assert report["verdict"]["decision"] == "rollback" and "helpful" in report["verdict"]["reason"]


def test_without_auto_only_the_max_duration_acts() -> None:
    bad = {"champion": counters(120), "challenger": counters(40, errors=30)}
    manual = state()
    assert decide(manual, build_report(manual, bad), now_ms=manual.definition.started_ms + 1) is None
    timed = state(max_duration_s=60)
    decision = decide(timed, build_report(timed, bad), now_ms=timed.definition.started_ms + 61_000)
    assert decision is not None and decision.action == "rollback" and "max duration" in decision.reason


def test_nothing_is_decided_for_a_canary_that_is_no_longer_running() -> None:
    ended = state(Status.ROLLED_BACK, auto=True)
    report = build_report(ended, {"champion": counters(120), "challenger": counters(40, errors=30)})
    assert decide(ended, report, now_ms=0) is None


# Scores arrive after the requests they score (an LLM judge takes seconds), so an automatic decision must
# not take a score that has not reached both variants yet for a score that does not exist.


def test_a_score_only_the_champion_has_reported_yet_holds_promotion_back() -> None:
    a = counters(300, lowercase=(300, 300, 300, 300))
    b = counters(300)  # the challenger's scores are still being judged
    auto = state(auto=True)
    report = build_report(auto, {"champion": a, "challenger": b})
    assert report["verdict"]["verdict"] == "undecided" and report["verdict"]["decision"] == "continue"
    assert "lowercase 0 of 100 in the challenger" in report["verdict"]["reason"]
    assert decide(auto, report, now_ms=auto.definition.started_ms + 1) is None


def test_scores_below_the_minimum_in_either_variant_hold_promotion_back() -> None:
    a = counters(300, lowercase=(300, 300, 300, 300))
    b = counters(300, lowercase=(20, 20, 20, 20))
    report = build_report(state(auto=True), {"champion": a, "challenger": b})
    assert report["verdict"]["decision"] == "continue"
    assert "lowercase 20 of 100 in the challenger" in report["verdict"]["reason"]


def test_once_every_score_has_enough_samples_in_both_variants_it_promotes_on_them() -> None:
    a = counters(300, lowercase=(150, 150, 150, 150), helpful=(100, 80, 80, 80))
    b = counters(300, lowercase=(100, 100, 100, 100), helpful=(100, 85, 85, 85))
    report = build_report(state(auto=True), {"champion": a, "challenger": b})
    assert report["verdict"]["verdict"] == "not_worse" and report["verdict"]["decision"] == "promote"
    assert report["verdict"]["reason"].startswith("not worse on any guarded metric, primary equal or better")
    assert "helpful" in report["verdict"]["reason"]  # the first score is the primary metric


def test_a_bad_score_that_arrives_late_rolls_back_before_the_minimum() -> None:
    a = counters(300, lowercase=(39, 39, 39, 39))
    b = counters(300, lowercase=(51, 0, 0, 0))
    auto = state(auto=True)
    report = build_report(auto, {"champion": a, "challenger": b})
    assert report["verdict"]["decision"] == "rollback"
    assert report["verdict"]["reason"].startswith("challenger is worse on lowercase 0.0% vs 100.0%")
    decision = decide(auto, report, now_ms=auto.definition.started_ms + 1)
    assert decision is not None and decision.action == "rollback"


def test_errors_still_roll_back_while_scores_are_pending() -> None:
    a = counters(120, lowercase=(50, 50, 50, 50))
    b = counters(40, errors=30)
    report = build_report(state(auto=True), {"champion": a, "challenger": b})
    assert report["verdict"]["decision"] == "rollback" and "error_rate" in report["verdict"]["reason"]


def test_a_guarded_score_that_never_arrives_is_never_promoted_and_max_duration_rolls_back() -> None:
    timed = state(auto=True, guards=("helpful",), max_duration_s=60)
    report = build_report(timed, {"champion": counters(300), "challenger": counters(300)})
    assert report["verdict"]["decision"] == "continue"
    assert "helpful 0 of 100 in the champion" in report["verdict"]["reason"]
    assert decide(timed, report, now_ms=timed.definition.started_ms + 59_000) is None
    decision = decide(timed, report, now_ms=timed.definition.started_ms + 61_000)
    assert decision is not None and decision.action == "rollback" and "max duration" in decision.reason
    assert "helpful 0 of 100" in decision.reason


def test_a_primary_score_that_has_not_reached_the_challenger_holds_promotion_back() -> None:
    a = counters(300, helpful=(200, 150, 150, 150))
    b = counters(300)
    report = build_report(
        state(auto=True, primary="helpful", guards=("latency",)), {"champion": a, "challenger": b}
    )
    assert report["verdict"]["decision"] == "continue" and "helpful" in report["verdict"]["reason"]


def test_a_score_neither_guarded_nor_primary_does_not_hold_promotion_back() -> None:
    a = counters(300, lowercase=(300, 300, 300, 300))
    d = state(auto=True, guards=("latency",), primary="error_rate")
    report = build_report(d, {"champion": a, "challenger": counters(300)})
    assert report["verdict"]["decision"] == "promote" and "error_rate" in report["verdict"]["reason"]


def test_a_scorer_in_force_holds_promotion_back_before_its_first_score_arrives() -> None:
    """No score has reached either variant yet, but the deciding replica has a scorer: it waits for it."""
    auto = state(auto=True)
    both = {"champion": counters(300), "challenger": counters(300)}
    assert build_report(auto, both)["verdict"]["decision"] == "promote"  # no scorer anywhere: errors decide
    waiting = build_report(auto, both, expected_scores={"lowercase"})
    assert waiting["verdict"]["decision"] == "continue"
    assert "lowercase 0 of 100 in the champion" in waiting["verdict"]["reason"]
    scored = {
        "champion": counters(300, lowercase=(150, 150, 150, 150)),
        "challenger": counters(300, lowercase=(120, 120, 120, 120)),
    }
    assert build_report(auto, scored, expected_scores={"lowercase"})["verdict"]["decision"] == "promote"
    named = state(auto=True, guards=("error_rate",))  # --guard names what decides: a scorer is not waited for
    assert build_report(named, both, expected_scores={"lowercase"})["verdict"]["decision"] == "promote"
