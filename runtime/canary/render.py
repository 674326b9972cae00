"""Plain-text views of a canary for the terminal (``runtime canary status`` and ``history``).

They render the same report the JSON views return (:func:`runtime.canary.report.build_report`), so the
table and ``--json`` never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from registry.store.canaries_repo import CanaryRecord
from runtime.canary.model import CHALLENGER, CHAMPION

__all__ = ["render_history", "render_report"]


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pct(value: float | None, interval: Sequence[float] | None = None) -> str:
    if value is None:
        return "-"
    text = f"{value * 100:.1f}%"
    return f"{text} [{interval[0] * 100:.1f}, {interval[1] * 100:.1f}]" if interval else text


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _timing(summary: Mapping[str, Any] | None, keys: Sequence[str]) -> str:
    if not summary:
        return "-"
    return "/".join(_num(summary[k]) for k in keys) + " s"


def _variant_rows(variants: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    a, b = variants[CHAMPION], variants[CHALLENGER]

    def row(label: str, render: Any) -> tuple[str, str, str]:
        return (label, render(a), render(b))

    rows = [
        row("requests", lambda v: str(v["requests"])),
        row("error rate", lambda v: _pct(v["error_rate"], v["error_rate_ci95"])),
        row("latency p50/p95/p99", lambda v: _timing(v["latency_s"], ("p50", "p95", "p99"))),
        row("ttft p50/p95", lambda v: _timing(v["ttft_s"], ("p50", "p95"))),
        row(
            "tokens / request",
            lambda v: _num(v["tokens_per_request"]["total"], 4) if v["tokens_per_request"] else "-",
        ),
        row("cost / request", lambda v: _num(v["cost_per_request"])),
    ]
    for name in sorted(set(a["scores"]) | set(b["scores"])):
        rows.append(row(f"score {name}", lambda v, n=name: _score(v["scores"].get(n))))
    if a["dropped"] or b["dropped"]:
        rows.append(row("dropped (Redis down)", lambda v: str(v["dropped"])))
    return rows


def _score(s: Mapping[str, Any] | None) -> str:
    if not s:
        return "-"
    if "pass_rate" in s:
        return _pct(s["pass_rate"], s["pass_rate_ci95"]) + " pass"
    low, high = s["mean_ci95"]
    return f"{_num(s['mean'])} [{_num(low)}, {_num(high)}]"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _diff(row: Mapping[str, Any], value: float) -> str:
    return f"{value * 100:+.2f} pts" if row["kind"] == "rate" else f"{value:+.4g}"


def _comparison_rows(comparisons: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    rows = [["metric", "difference", "95% CI", "p", "always-valid 95% CI", "p", "outcome"]]
    for c in comparisons:
        flags = "*" if c["primary"] else ""
        flags += " (guarded)" if c["guarded"] else ""
        rows.append(
            [
                c["metric"] + flags,
                _diff(c, c["difference"]),
                f"[{_diff(c, c['ci95'][0])}, {_diff(c, c['ci95'][1])}]",
                f"{c['p_value']:.3g}",
                f"[{_diff(c, c['always_valid_ci95'][0])}, {_diff(c, c['always_valid_ci95'][1])}]",
                f"{c['always_valid_p']:.3g}",
                c["outcome"],
            ]
        )
    return rows


def _moved(report: Mapping[str, Any]) -> list[str]:
    alias = report.get("champion_alias")
    return [f"champion alias moved: {alias['message']}"] if alias and alias["moved"] else []


def _audit(audit: Sequence[Mapping[str, Any]]) -> list[str]:
    if not audit:
        return []
    return [
        "",
        "audit:",
        *(
            f"  {_when(e['at_ms'])}  {e['actor']}  {e['action']}  {e.get('reason') or ''}".rstrip()
            for e in audit
        ),
    ]


def render_report(report: Mapping[str, Any], audit: Sequence[Mapping[str, Any]] = ()) -> str:
    c = report["canary"]
    if "redis_state" in report:  # only the store's history has it
        head = f"canary {c['canary_id']}  {c['model']}  {c['status']}  (live state lost from Redis)"
        return "\n".join([head, report["message"], *_audit(audit)])
    mode = f"{c['mode']} {c['weight']:g}%, sticky by {c['sticky_by']}" + (", auto" if c["auto"] else "")
    lines = [
        f"canary {c['canary_id']}  {c['model']}  {c['status']}  ({mode})",
        f"champion @{c['champion_alias']} = v{c['champion_version']}  challenger v{c['challenger_version']}"
        f"  started {_when(c['started_ms'])} UTC by {c['started_by']}",
        *_moved(report),
        "",
        *_table([("", CHAMPION, CHALLENGER), *_variant_rows(report["variants"])]),
        "",
        *_table(_comparison_rows(report["comparisons"])),
        "",
        f"verdict: {report['verdict']['verdict']} -> {report['verdict']['decision']}: "
        f"{report['verdict']['reason']}",
    ]
    if c["decided_by"]:
        lines.append(f"decided by {c['decided_by']}: {c['reason'] or '-'}")
    return "\n".join(lines + _audit(audit))


def render_history(records: Sequence[CanaryRecord]) -> str:
    if not records:
        return "no canaries"
    rows = [
        [
            "id",
            "model",
            "champion",
            "challenger",
            "mode",
            "status",
            "started",
            "ended",
            "decided by",
            "reason",
        ]
    ]
    for r in records:
        rows.append(
            [
                r.canary_id,
                r.model_name,
                f"{r.champion}=v{r.champion_version}",
                f"v{r.challenger_version}",
                f"{r.mode} {r.weight:g}%",
                r.status,
                _when(r.started_time),
                _when(r.ended_time),
                r.decided_by or "-",
                (r.reason or "-")[:80],
            ]
        )
    return "\n".join(_table(rows))
