"""Turn a results dict into the printed report: the table, per-server figures, ratios and slow streams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ratios", "render"]

_CAVEATS = (
    "Loopback on one machine: the load generator (its own process) and the server share the same cores,\n"
    "so every figure is lower than on separate machines and the ratios are what carries over. Servers run\n"
    "one at a time; deltas/s counts output_text.delta frames; TTFE is the time to the first complete\n"
    "SSE event. other% = share of the machine's CPU taken by processes other than the server and the\n"
    "load generator during the run (a noisy neighbour): figures with a high other% are not comparable."
)


@dataclass(frozen=True)
class Ratio:
    label: str
    numerator: str
    denominator: str
    target: float | None = None  # minimum acceptable ratio
    stream_target: float | None = None


RATIOS = (
    Ratio("runtime/bare (async agent)", "runtime-async", "bare", 0.50, 0.70),
    Ratio("runtime/bare (sync agent)", "runtime-sync", "bare", 0.35),
    Ratio("tracing+metrics on/off", "runtime-async", "runtime-async-obs-off", 0.85, 0.85),
    Ratio("2 workers/1 worker", "runtime-async-2w", "runtime-async"),
    Ratio("bare/hello (loadgen headroom)", "bare", "hello"),
    Ratio("runtime/MLflow agent server", "runtime-async", "mlflow-agent"),
    Ratio("runtime/MLflow agent, tracing off", "runtime-async", "mlflow-agent-tracing-off", 3.0),
    Ratio("runtime/mlflow models serve", "runtime-async", "mlflow-serve"),
)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _throughput(run: dict[str, Any], scenario: str) -> float | None:
    value = run.get("deltas_per_s") if scenario.endswith("-stream") else run.get("rps")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _runs(servers: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    rows = []
    for server, record in servers.items():
        for scenario, by_conc in record.get("runs", {}).items():
            for conc, run in by_conc.items():
                if isinstance(run, dict) and "rps" in run:
                    rows.append((server, scenario, conc, run))
    return rows


def _table(servers: dict[str, Any]) -> list[str]:
    head = f"{'server':<26}{'scenario':<19}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    head += f"{'deltas/s':>11}{'TTFE p50':>10}{'TTFE p99':>10}{'err':>5}{'other%':>7}"
    lines = [head, "-" * len(head)]
    for server, scenario, conc, run in _runs(servers):
        lines.append(
            f"{server:<26}{scenario:<19}{conc:>5}{_fmt(run['rps'], 0):>10}{_fmt(run['p50_ms'], 2):>9}"
            f"{_fmt(run['p99_ms'], 2):>9}{_fmt(run['deltas_per_s'] or None, 0):>11}"
            f"{_fmt(run['ttfe_p50_ms'], 2):>10}{_fmt(run['ttfe_p99_ms'], 2):>10}{run['errors']:>5}"
            f"{_fmt(run.get('other_cpu_pct'), 0):>7}"
        )
    return lines


def _first_request(record: dict[str, Any]) -> float | None:
    """The slowest first request over the scenarios: a server's lazy set-up shows up there."""
    firsts = [run.get("first_request_ms") for run in record.get("runs", {}).values()]
    values = [float(value) for value in firsts if isinstance(value, int | float)]
    return max(values, default=None)


def _server_lines(servers: dict[str, Any]) -> list[str]:
    head = f"{'server':<26}{'cold start s':>13}{'1st req ms':>11}{'RSS idle MB':>12}"
    head += f"{'RSS after MB':>13}{'max/proc MB':>12}"
    head += f"{'procs':>6}{'load CPU s':>11}{'deferred CPU s':>15}{'spans kept':>11}{'dropped':>9}"
    lines = [head, "-" * len(head)]
    for name, rec in servers.items():
        if rec.get("status") != "ok":
            lines.append(f"{name:<26}{rec.get('status')}: {str(rec.get('reason', '')).splitlines()[0]}")
            continue
        lines.append(
            f"{name:<26}{_fmt(rec.get('cold_start_s'), 2):>13}{_fmt(_first_request(rec), 1):>11}"
            f"{_fmt(rec.get('rss_idle_mb')):>12}"
            f"{_fmt(rec.get('rss_after_mb')):>13}{_fmt(rec.get('rss_max_process_mb')):>12}"
            f"{_fmt(rec.get('processes')):>6}{_fmt(rec.get('load_cpu_s'), 2):>11}"
            f"{_fmt(rec.get('deferred_cpu_s'), 3):>15}{_spans(rec, 'spans_exported'):>11}"
            f"{_spans(rec, 'spans_dropped'):>9}"
        )
    return lines


def _spans(record: dict[str, Any], key: str) -> str:
    """A runtime's span count (read from its /metrics after the load), '-' for other servers."""
    spans = record.get("spans")
    return f"{spans[key]:,}" if isinstance(spans, dict) else "-"


def ratios(servers: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ratio that both sides of were measured in this run, with its target and verdict."""
    found = []
    for ratio in RATIOS:
        top = servers.get(ratio.numerator, {}).get("runs", {})
        bottom = servers.get(ratio.denominator, {}).get("runs", {})
        for scenario, by_conc in top.items():
            for conc, run in by_conc.items():
                other = bottom.get(scenario, {}).get(conc)
                if not isinstance(run, dict) or not isinstance(other, dict):
                    continue
                a, b = _throughput(run, scenario), _throughput(other, scenario)
                if a is None or b is None:
                    continue
                target = ratio.stream_target if scenario.endswith("-stream") else ratio.target
                row = {"ratio": ratio.label, "scenario": scenario, "concurrency": int(conc), "value": a / b}
                row["target"] = target
                row["pass"] = None if target is None else a / b >= target
                found.append(row)
    return found


def _latency_gaps(servers: dict[str, Any]) -> list[str]:
    top = servers.get("runtime-async", {}).get("runs", {})
    bottom = servers.get("bare", {}).get("runs", {})
    lines = []
    for scenario, by_conc in top.items():
        stream = scenario.endswith("-stream")
        key, limit = ("ttfe_p50_ms", 2.0) if stream else ("p50_ms", 1.0)
        for conc, run in by_conc.items():
            other = bottom.get(scenario, {}).get(conc)
            if isinstance(run, dict) and isinstance(other, dict) and run.get(key) and other.get(key):
                gap = run[key] - other[key]
                verdict = "ok" if gap <= limit else "MISS"
                what = "TTFE p50" if stream else "p50"
                lines.append(
                    f"  {what} runtime-async - bare  {scenario:<19} c={conc:<4} {gap:+.2f} ms"
                    f"  (target <= {limit:.0f} ms: {verdict})"
                )
    return lines


def _ratio_lines(servers: dict[str, Any]) -> list[str]:
    lines = []
    for row in ratios(servers):
        verdict = "" if row["pass"] is None else ("ok" if row["pass"] else "MISS")
        target = f"(target >= {row['target']:.2f}: {verdict})" if row["target"] is not None else ""
        lines.append(
            f"  {row['ratio']:<36}{row['scenario']:<19} c={row['concurrency']:<4}"
            f" {row['value']:6.2f}  {target}"
        )
    return lines + _latency_gaps(servers)


def _slow_lines(slow: dict[str, Any]) -> list[str]:
    head = f"{'server':<20}{'streams':>8}{'done':>6}{'err':>5}{'extra gap p50':>14}{'p99 ms':>8}{'max ms':>8}"
    head += f"{'TTFE p99':>9}{'RSS before':>11}{'peak MB':>8}{'KB/stream':>10}{'deferred CPU s':>15}"
    head += f"{'spans kept':>11}{'dropped':>9}"
    lines = [head, "-" * len(head)]
    for name, rec in slow.items():
        if "streams" not in rec:
            lines.append(f"{name:<20}{rec.get('status')}: {str(rec.get('reason', '')).splitlines()[0]}")
            continue
        lines.append(
            f"{name:<20}{rec['streams']:>8}{rec['completed']:>6}{rec['errors']:>5}"
            f"{_fmt(rec['gap_extra_p50_ms'], 2):>14}{_fmt(rec['gap_extra_p99_ms'], 2):>8}"
            f"{_fmt(rec['gap_extra_max_ms'], 1):>8}{_fmt(rec['ttfe_p99_ms'], 1):>9}"
            f"{_fmt(rec['rss_before_mb']):>11}{_fmt(rec['rss_peak_mb']):>8}{_fmt(rec['kb_per_stream']):>10}"
            f"{_fmt(rec.get('deferred_cpu_s'), 3):>15}{_spans(rec, 'spans_exported'):>11}"
            f"{_spans(rec, 'spans_dropped'):>9}"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    options = results["options"]
    machine = results["machine"]
    out = [
        f"bench: {machine['cpus']} CPUs, Python {machine['python']}, {machine['time']}",
        f"median of {options['repeat']} run(s) of {options['duration']} s"
        f" after {options['warmup']} s warm-up",
        _CAVEATS,
        "",
    ]
    servers = results.get("servers")
    if servers is not None:
        out += [*_table(servers), "", *_server_lines(servers), "", "RATIOS (req/s; deltas/s for streams)"]
        out += _ratio_lines(servers) or ["  (none: a side of every ratio is missing)"]
        out += ["", str(results.get("mlflow") or "MLflow: measured"), ""]
    slow = results.get("slow_streams")
    if slow is not None:
        out += [
            f"SLOW STREAMS: {options['slow_streams']} concurrent, {options['slow_deltas']} deltas at 10/s;"
            " extra gap = delay between deltas beyond 100 ms",
            *_slow_lines(slow),
        ]
    return "\n".join(out)
