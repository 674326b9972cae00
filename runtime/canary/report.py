"""Turn two variants' raw counters into the side-by-side comparison every view shows, and the verdict.

One function, :func:`build_report`, serves ``runtime canary status``, ``GET /api/canaries/{id}`` and the auto
policy, fed the same inputs by :func:`runtime.canary.operator.read_report`, so what an operator reads is
exactly what the policy acts on. Metrics compared (challenger minus
champion):

- ``error_rate`` (errors / finished requests; lower is better), always guarded;
- ``latency`` (mean seconds; lower is better), guarded when listed in ``guards``;
- each online-evaluation score: its pass rate when the scorer judged pass/fail, else its mean (higher is
  better); guarded when listed in ``guards``, or every score when ``guards`` is empty.

Scores arrive after the requests they score (a judge may take seconds), often for one variant before the
other, so a score the decision depends on (a guarded one, or the primary) must have ``min_requests`` samples
in both variants before the verdict can be a promotion; one that is known in neither (a ``guards`` or
``primary`` name) holds promotion back too. Missing evidence never promotes: such a canary stays undecided
(and its maximum duration, if any, rolls it back), while a rollback on what has arrived happens at once.

Outcomes come from the always-valid interval (see :mod:`runtime.canary.stats`), so looking at the report
every second does not make a "better" or "worse" more likely by chance.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from runtime.canary import stats
from runtime.canary.counters import LATENCY_BOUNDS, TTFT_BOUNDS, histogram, quantile
from runtime.canary.model import CHALLENGER, CHAMPION, ERROR_RATE, LATENCY, CanaryDefinition, CanaryState

__all__ = ["VARIANTS", "build_report", "variant_summary"]

VARIANTS = (CHAMPION, CHALLENGER)
Counters = Mapping[str, float]


def _int(c: Counters, key: str) -> int:
    return int(c.get(key, 0))


def _finished(c: Counters) -> int:
    return _int(c, "requests") - _int(c, "cancelled")


def _score_names(c: Counters) -> set[str]:
    return {key[6:-2] for key in c if key.startswith("score:") and key.endswith(":n")}


def _quantiles(c: Counters, name: str, bounds: tuple[float, ...], count: int, total: float) -> Any:
    if not count:
        return None
    counts = histogram(c, name, bounds)
    q = {f"p{p}": quantile(p / 100, bounds, counts) for p in (50, 95, 99)}
    return {**q, "mean": total / count}


def _score_summary(c: Counters, name: str) -> dict[str, Any]:
    m = stats.Moments(
        _int(c, f"score:{name}:n"), c.get(f"score:{name}:sum", 0.0), c.get(f"score:{name}:sq", 0.0)
    )
    judged, passed = _int(c, f"score:{name}:judged"), _int(c, f"score:{name}:passed")
    summary: dict[str, Any] = {"n": m.n, "mean": m.mean, "mean_ci95": stats.mean_interval(m).as_list()}
    if judged:
        summary |= {"judged": judged, "pass_rate": passed / judged}
        summary["pass_rate_ci95"] = stats.wilson_interval(passed, judged).as_list()
    return summary


def variant_summary(c: Counters) -> dict[str, Any]:
    requests, finished, errors = _int(c, "requests"), _finished(c), _int(c, "errors")
    tokens_n = _int(c, "tokens_n")
    cost_n = _int(c, "cost_n")
    return {
        "requests": requests,
        "ok": _int(c, "ok"),
        "errors": errors,
        "cancelled": _int(c, "cancelled"),
        "dropped": _int(c, "dropped"),
        "errors_by_code": {k[6:]: int(v) for k, v in sorted(c.items()) if k.startswith("error:")},
        "error_rate": errors / finished if finished else None,
        "error_rate_ci95": stats.wilson_interval(errors, finished).as_list() if finished else None,
        "latency_s": _quantiles(c, "latency", LATENCY_BOUNDS, requests, c.get("latency_sum", 0.0)),
        "ttft_s": _quantiles(c, "ttft", TTFT_BOUNDS, _int(c, "ttft_count"), c.get("ttft_sum", 0.0)),
        "tokens_per_request": None
        if not tokens_n
        else {
            "input": _int(c, "input_tokens") / tokens_n,
            "output": _int(c, "output_tokens") / tokens_n,
            "total": (_int(c, "input_tokens") + _int(c, "output_tokens")) / tokens_n,
        },
        "cost_per_request": c.get("cost", 0.0) / cost_n if cost_n else None,
        "scores": {name: _score_summary(c, name) for name in sorted(_score_names(c))},
    }


def _outcome(comparison: stats.Comparison, lower_is_better: bool) -> str:
    interval = comparison.always_valid_interval
    if interval.low > 0:
        return "worse" if lower_is_better else "better"
    if interval.high < 0:
        return "better" if lower_is_better else "worse"
    return "undecided"


def _entry(
    metric: str, kind: str, lower_is_better: bool, values: tuple[float, float], c: stats.Comparison | None
) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "metric": metric,
        "kind": kind,
        "better": "lower" if lower_is_better else "higher",
        "champion": values[0],
        "challenger": values[1],
        "difference": c.difference,
        "ci95": c.interval.as_list(),
        "p_value": c.p_value,
        "test": "two-proportion z" if kind == "rate" else "Welch t",
        "always_valid_ci95": c.always_valid_interval.as_list(),
        "always_valid_p": c.always_valid_p,
        "outcome": _outcome(c, lower_is_better),
    }


def _moments(c: Counters, n_field: str, prefix: str) -> stats.Moments:
    return stats.Moments(_int(c, n_field), c.get(prefix + "sum", 0.0), c.get(prefix + "sq", 0.0))


def _comparisons(d: CanaryDefinition, a: Counters, b: Counters) -> list[dict[str, Any]]:
    alpha, planned = d.alpha, d.min_requests
    na, nb = _finished(a), _finished(b)
    ea, eb = _int(a, "errors"), _int(b, "errors")
    errors = stats.two_proportions(ea, na, eb, nb, alpha=alpha, planned_n=planned)
    rows = [_entry(ERROR_RATE, "rate", True, (ea / max(na, 1), eb / max(nb, 1)), errors)]
    la, lb = _moments(a, "requests", "latency_"), _moments(b, "requests", "latency_")
    latency = stats.welch(la, lb, alpha=alpha, planned_n=planned)
    rows.append(_entry(LATENCY, "mean", True, (la.mean, lb.mean), latency))
    for name in sorted(_score_names(a) & _score_names(b)):
        prefix = f"score:{name}:"
        ja, jb = _int(a, prefix + "judged"), _int(b, prefix + "judged")
        if ja and jb:
            pa, pb = _int(a, prefix + "passed"), _int(b, prefix + "passed")
            passes = stats.two_proportions(pa, ja, pb, jb, alpha=alpha, planned_n=planned)
            rows.append(_entry(name, "rate", False, (pa / ja, pb / jb), passes))
        else:
            ma, mb = _moments(a, prefix + "n", prefix), _moments(b, prefix + "n", prefix)
            means = stats.welch(ma, mb, alpha=alpha, planned_n=planned)
            rows.append(_entry(name, "mean", False, (ma.mean, mb.mean), means))
    found = [row for row in rows if row is not None]
    primary = primary_metric(d, a, b)
    for row in found:
        name = row["metric"]
        score = name not in (ERROR_RATE, LATENCY)
        row["guarded"] = name == ERROR_RATE or name in d.guards or (score and not d.guards)
        row["primary"] = name == primary
    return found


def primary_metric(d: CanaryDefinition, a: Counters, b: Counters) -> str:
    """``primary``, else the first score either variant has reported, else the error rate."""
    if d.primary:
        return d.primary
    scores = sorted(_score_names(a) | _score_names(b))
    return scores[0] if scores else ERROR_RATE


def _is_score(metric: str) -> bool:
    return metric not in (ERROR_RATE, LATENCY)


def _decisive_scores(d: CanaryDefinition, a: Counters, b: Counters, expected: Collection[str]) -> list[str]:
    """The scores a promotion depends on: the guarded ones (every score the replica's scorers will report,
    ``expected``, when none is named) and the primary one, reported yet or not."""
    named = {name for name in d.guards if _is_score(name)}
    scores = named if d.guards else _score_names(a) | _score_names(b) | set(expected)
    primary = primary_metric(d, a, b)
    return sorted(scores | {primary} if _is_score(primary) else scores)


def _missing_scores(d: CanaryDefinition, a: Counters, b: Counters, expected: Collection[str]) -> list[str]:
    """``lowercase 12 of 500 in the challenger`` for each decisive score short of ``min_requests``."""
    missing = []
    for name in _decisive_scores(d, a, b, expected):
        for variant, c in ((CHAMPION, a), (CHALLENGER, b)):
            n = _int(c, f"score:{name}:n")
            if n < d.min_requests:
                missing.append(f"{name} {n} of {d.min_requests} in the {variant}")
    return missing


def _fmt(value: float, rate: bool, signed: bool = False) -> str:
    if rate:
        return f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}%"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def describe(row: Mapping[str, Any]) -> str:
    """``error_rate 12.0% vs 1.0% (+11.0 pts, always-valid 95% CI [+5.1, +16.9], p=0.0012)``."""
    rate = row["kind"] == "rate"
    low, high = row["always_valid_ci95"]
    unit = " pts" if rate else ""
    values = f"{_fmt(row['challenger'], rate)} vs {_fmt(row['champion'], rate)}"
    difference = _fmt(row["difference"], rate, True) + unit
    interval = f"[{_fmt(low, rate, True)}, {_fmt(high, rate, True)}]"
    return (
        f"{row['metric']} {values} ({difference}, always-valid 95% CI {interval}, "
        f"p={row['always_valid_p']:.2g})"
    )


def _verdict(
    d: CanaryDefinition, comparisons: list[dict[str, Any]], n_small: int, missing: list[str]
) -> dict[str, str]:
    worse = [row for row in comparisons if row["guarded"] and row["outcome"] == "worse"]
    if worse:
        reason = "challenger is worse on " + "; ".join(describe(row) for row in worse)
        return {"verdict": "worse", "decision": "rollback", "reason": reason}
    if n_small < d.min_requests:
        reason = f"{n_small} of {d.min_requests} requests in the smaller variant; no guardrail crossed"
        return {"verdict": "undecided", "decision": "continue", "reason": reason}
    if missing:
        reason = "waiting for scores: " + ", ".join(missing) + "; no guardrail crossed"
        return {"verdict": "undecided", "decision": "continue", "reason": reason}
    primary = next((row for row in comparisons if row["primary"]), None)
    if primary is None:
        return {
            "verdict": "undecided",
            "decision": "continue",
            "reason": "no data yet for the primary metric",
        }
    if primary["outcome"] == "better":
        reason = "better on the primary metric, not worse on any guarded one: " + describe(primary)
        return {"verdict": "better", "decision": "promote", "reason": reason}
    lower = primary["better"] == "lower"
    if (primary["difference"] <= 0) if lower else (primary["difference"] >= 0):
        reason = "not worse on any guarded metric, primary equal or better: " + describe(primary)
        return {"verdict": "not_worse", "decision": "promote", "reason": reason}
    reason = "primary metric slightly worse, not significantly: " + describe(primary)
    return {"verdict": "undecided", "decision": "continue", "reason": reason}


def build_report(
    state: CanaryState, counters: Mapping[str, Counters], expected_scores: Collection[str] = ()
) -> dict[str, Any]:
    """``expected_scores``: the scores the replicas' scorers will report for these models (the canary's set
    in Redis, see :func:`runtime.canary.operator.read_report`), so a promotion waits for them even before
    the first one arrives, and every view says so."""
    d = state.definition
    a, b = counters.get(CHAMPION, {}), counters.get(CHALLENGER, {})
    comparisons = _comparisons(d, a, b)
    n_small = min(_finished(a), _finished(b))
    return {
        "canary": state.summary(),
        "variants": {CHAMPION: variant_summary(a), CHALLENGER: variant_summary(b)},
        "comparisons": comparisons,
        "verdict": _verdict(d, comparisons, n_small, _missing_scores(d, a, b, expected_scores)),
    }
