"""``python -m bench.paired``: tracing on against off, and against bare Starlette, measured back to back.

The full run measures one server after another, minutes apart; on a machine whose throughput drifts (this
project's drifts by up to 1.8x within minutes) the drift lands on whichever server ran in a slow phase, and
a ratio of two servers measured ten minutes apart says little. Here every server is started once and kept
running (an idle server costs no CPU), and each round measures all of them in turn on the same scenario
and concurrency, seconds apart. A ratio is computed within each round and the median over the rounds is
reported, so a drift slower than a round weighs on both sides of it alike. The CPU the server's processes
(the serving process and its trace writer) spent per request is reported too, as the median over the
rounds: a cost, where requests/s in a closed loop on two shared cores also depends on who waited for whom;
and, apart, what the serving process's main thread (its event loop) spent: at saturation that thread is
busy all the time, so its CPU per request is what caps a worker's requests/s (the trace writer and the load
generator share the other core). Last, the share of the load's time that thread was runnable but waiting
for a CPU (``/proc/<pid>/task/<pid>/schedstat``): the price of sharing two cores, which a ratio of CPU
per request does not show (with tracing on, the trace writer's bursts push the load generator onto the
event loop's core; see bench/RESULTS.md, fifth session).

Servers: ``bare``, ``runtime-async`` (tracing and metrics on) and ``runtime-async-obs-off``, as in the full
run; with ``--parts``, also ``runtime-async-tracing`` and ``runtime-async-metrics`` (one part on) and
``runtime-async-sampled`` (both on, 10 % of traces kept), each against both off: which part of the
overhead is which, in a real server, and what sampling saves. Prints one line per scenario
and concurrency and writes JSON (``--out``). ``--loadgen wrk`` drives the (non-streaming) loads with wrk
instead of the project's load generator (see :mod:`bench.wrk`): a cross-check that the ratios are the
servers', not the Python load generator's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.measure import first_request_ms, load_spec, run_loadgen
from bench.scenarios import SCENARIOS
from bench.servers import RunningServer, start_server
from bench.stats import median_or_none
from bench.variants import BENCH_DIR, load_variants, part_variants
from bench.wrk import wrk_missing

__all__ = [
    "PAIRS",
    "PARTS",
    "PART_PAIRS",
    "SERVERS",
    "cpu_per_request_us",
    "load_arguments",
    "main",
    "round_ratios",
    "serving",
    "summarize",
    "write_results",
]

SERVERS = ("bare", "runtime-async", "runtime-async-obs-off")
LOADGENS = {"python": "bench.loadgen", "wrk": "bench.wrk"}  # --loadgen: the module that drives a load
# (label, numerator, denominator, target): the ratios of the benchmark issue this run checks
PAIRS: tuple[tuple[str, str, str, float | None], ...] = (
    ("tracing+metrics on/off", "runtime-async", "runtime-async-obs-off", 0.85),
    ("runtime/bare (async agent)", "runtime-async", "bare", 0.50),
)
# --parts: tracing alone, metrics alone and both with 10 % of traces kept, each against both off (no
# target of their own).
PARTS = ("runtime-async-tracing", "runtime-async-metrics", "runtime-async-sampled")
PART_PAIRS: tuple[tuple[str, str, str, float | None], ...] = (
    ("tracing alone/off", "runtime-async-tracing", "runtime-async-obs-off", None),
    ("metrics alone/off", "runtime-async-metrics", "runtime-async-obs-off", None),
    ("10% kept/off", "runtime-async-sampled", "runtime-async-obs-off", None),
)


def load_arguments(parser: argparse.ArgumentParser, *, rounds: int, duration: float) -> None:
    """The options a run of servers loaded in turn, round after round, takes (here and in bench.rate)."""
    parser.add_argument("--rounds", type=int, default=rounds, help=f"rounds per point (default {rounds})")
    parser.add_argument(
        "--duration", type=float, default=duration, help=f"measured seconds per load (default {duration:g})"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per load (default 1)")
    parser.add_argument("--concurrency", default="16,64", help="comma-separated (default 16,64)")
    parser.add_argument("--scenarios", default="invocations,responses", help="comma-separated")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__)
    load_arguments(parser, rounds=5, duration=3.0)
    parser.add_argument(
        "--loadgen", choices=sorted(LOADGENS), default="python", help="load generator (default python)"
    )
    parser.add_argument(
        "--parts",
        action="store_true",
        help="also tracing alone, metrics alone and 10%% of traces kept, each against both off",
    )
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/paired-<time>.json)")
    return parser.parse_args(argv)


def round_ratios(rounds: list[dict[str, float]], numerator: str, denominator: str) -> list[float]:
    """The ratio of two servers' requests/s in each round where both were measured."""
    return [r[numerator] / r[denominator] for r in rounds if r.get(numerator) and r.get(denominator)]


def summarize(
    rounds: list[dict[str, float]], pairs: tuple[tuple[str, str, str, float | None], ...] = PAIRS
) -> dict[str, Any]:
    """Median requests/s per server and the median of each pair's per-round ratios."""
    servers = sorted({name for r in rounds for name in r})
    return {
        "rps": {name: median_or_none([r.get(name) for r in rounds]) for name in servers},
        "ratios": {
            label: median_or_none(list(round_ratios(rounds, num, den))) for label, num, den, _ in pairs
        },
    }


def cpu_per_request_us(result: dict[str, Any], key: str = "server_cpu_s") -> float | None:
    """CPU the server's process tree (the serving process and its trace writer) spent per request issued,
    warm-up included: what a request costs, whoever waited for whom. With ``key`` set to
    ``server_main_thread_cpu_s``: its event-loop thread's alone, the one that caps a worker's requests/s."""
    cpu, issued = result.get(key), result.get("issued")
    if not isinstance(cpu, int | float) or not isinstance(issued, int) or issued <= 0:
        return None
    return cpu / issued * 1e6


# What one load tells of a server beside its requests/s: (key in the JSON, label printed).
_FIGURES = (
    ("cpu", "server CPU us/request (serving process + trace writer)"),
    ("main_thread_cpu", "of which its event-loop thread"),
    ("main_thread_wait_pct", "event-loop thread runnable but waiting for a CPU, % of the load's time"),
)


def _one(
    server: RunningServer, scenario: str, concurrency: int, args: argparse.Namespace
) -> tuple[float | None, dict[str, float]]:
    """(requests/s, the other figures of :data:`_FIGURES`) of one load; None and nothing when it failed
    or is unsupported."""
    spec = load_spec(server, SCENARIOS[scenario], concurrency, args.duration, args.warmup)
    if spec is None:
        return None, {}
    result = run_loadgen(spec, server, LOADGENS[args.loadgen])
    rps = result.get("rps")
    if not isinstance(rps, int | float) or result.get("errors"):
        return None, {}
    figures = {
        "cpu": cpu_per_request_us(result),
        "main_thread_cpu": cpu_per_request_us(result, "server_main_thread_cpu_s"),
        "main_thread_wait_pct": result.get("server_main_thread_wait_pct"),
    }
    return float(rps), {k: float(v) for k, v in figures.items() if isinstance(v, int | float)}


@contextmanager
def serving(names: tuple[str, ...], scenarios: list[str]) -> Iterator[dict[str, RunningServer]]:
    """The servers ``names`` started and kept running, each past its first request of every scenario (its
    lazy set-up is kept out of the measured loads); all stopped at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-paired-"))
    specs = {**load_variants(), **part_variants()}
    servers: dict[str, RunningServer] = {}
    try:
        for name in names:
            servers[name] = start_server(specs[name], workdir, Path(tempfile.mkdtemp(dir=workdir)))
            for scenario in scenarios:
                first_request_ms(servers[name], SCENARIOS[scenario])
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def write_results(results: dict[str, Any], out: Path | None, prefix: str) -> None:
    """Write ``results`` as JSON to ``out`` (default ``bench/results/<prefix>-<time>.json``) and say where."""
    out = out or BENCH_DIR / "results" / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    scenarios = args.scenarios.split(",")
    if args.loadgen == "wrk":
        streams = [name for name in scenarios if SCENARIOS[name].stream]
        problem = (f"wrk cannot measure streams: {streams}" if streams else None) or wrk_missing()
        if problem:
            print(problem, file=sys.stderr)
            return 2
    concurrency = [int(c) for c in args.concurrency.split(",")]
    results: dict[str, Any] = {
        "rounds": args.rounds,
        "duration": args.duration,
        "loadgen": args.loadgen,
        "points": {},
    }
    names, pairs = (SERVERS + PARTS, PAIRS + PART_PAIRS) if args.parts else (SERVERS, PAIRS)
    with serving(names, scenarios) as servers:
        for scenario in scenarios:
            for conc in concurrency:
                rounds: list[dict[str, float]] = []
                figures: dict[str, list[dict[str, float]]] = {key: [] for key, _ in _FIGURES}
                for _ in range(args.rounds):
                    measured = {name: _one(server, scenario, conc, args) for name, server in servers.items()}
                    rounds.append({name: m[0] for name, m in measured.items() if m[0] is not None})
                    for key, per_round in figures.items():
                        per_round.append({name: m[1][key] for name, m in measured.items() if key in m[1]})
                summary = summarize(rounds, pairs)
                for key, per_round in figures.items():
                    summary[key] = {
                        name: median_or_none([r.get(name) for r in per_round]) for name in servers
                    }
                results["points"][f"{scenario} c={conc}"] = {
                    "rounds": rounds,
                    **{f"{key}_rounds": per_round for key, per_round in figures.items()},
                    **summary,
                }
                _print(scenario, conc, summary, pairs)
    write_results(results, args.out, "paired")
    return 0


def _print(
    scenario: str,
    concurrency: int,
    summary: dict[str, Any],
    pairs: tuple[tuple[str, str, str, float | None], ...],
) -> None:
    rps = "  ".join(f"{name} {value:,.0f}" for name, value in summary["rps"].items() if value is not None)
    ratios = "  ".join(
        f"{label} {value:.2f}" + (f" (target {target:.2f})" if target is not None else "")
        for label, _, _, target in pairs
        if (value := summary["ratios"][label]) is not None
    )
    print(f"{scenario:<12} c={concurrency:<3} req/s {rps}\n{'':17}{ratios}", flush=True)
    for key, label in _FIGURES:
        digits = 1 if key.endswith("_pct") else 0
        values = "  ".join(
            f"{name} {value:,.{digits}f}" for name, value in summary[key].items() if value is not None
        )
        print(f"{'':17}{label}: {values}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
