"""``python -m bench.rate``: latency at a fixed offered load (open loop), side by side.

The closed loop of the full and paired runs keeps every connection busy: at saturation its p50 is the
concurrency over the server's throughput, so "p50 within 1 ms of bare" there says the same as a throughput
ratio (at c=64 it needs ~0.85 of bare's requests/s). What a user of a deployed agent sees is latency at the
load the deployment carries, below saturation; that is what vLLM's ``--request-rate`` and wrk2 measure, and
what this run measures: requests arrive at a fixed rate (Poisson times, the same schedule for every server
of a round), over a pool of ``--concurrency`` keep-alive connections, whether or not the server keeps up
(see :mod:`bench.loadgen`).

The rates are fractions (``--loads``, default 25, 50 and 75 %) of the traced runtime's own closed-loop
throughput, measured first in the same run on the same scenario and concurrency: loads the traced server
carries, whatever the machine. ``bare``, ``runtime-async`` (tracing and metrics on) and
``runtime-async-obs-off`` are kept running, and each round loads all three in turn at the same rate, so a
drift of the machine weighs on all alike. Reported per rate: each server's p50 and p99 (median over the
rounds), the requests/s it served (a server that did not keep up is behind the offered rate, and its
latency is a queue's), how late the load generator's timer dispatched requests (its floor), and the two
latency differences of the issues, runtime - bare and tracing on - off, taken within each round, medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from bench.loadgen import LoadSpec
from bench.measure import load_spec, run_loadgen
from bench.paired import SERVERS, load_arguments, serving, write_results
from bench.scenarios import SCENARIOS
from bench.servers import RunningServer
from bench.stats import median_or_none

__all__ = ["DIFFERENCES", "main", "offered_rates", "round_differences", "summarize_rate"]

CAPACITY_OF = "runtime-async"  # the rates are fractions of this server's closed-loop throughput
# (label, minuend, subtrahend, target in ms): the p50 differences the issues set a bound on
DIFFERENCES = (
    ("p50 runtime - bare", "runtime-async", "bare", 1.0),
    ("p50 tracing+metrics on - off", "runtime-async", "runtime-async-obs-off", 0.3),
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rate", description=__doc__)
    load_arguments(parser, rounds=3, duration=4.0)  # --concurrency: the connections of the pool
    parser.add_argument(
        "--loads",
        default="0.25,0.5,0.75",
        help=f"offered rates as fractions of {CAPACITY_OF}'s closed-loop requests/s (default 0.25,0.5,0.75)",
    )
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/rate-<time>.json)")
    return parser.parse_args(argv)


def offered_rates(capacity: float, loads: list[float]) -> list[float]:
    """The rates to offer: each fraction of ``capacity``, rounded to 10 requests/s (at least 10)."""
    return [max(10.0, round(capacity * load, -1)) for load in loads]


def round_differences(
    rounds: list[dict[str, dict[str, float]]], minuend: str, subtrahend: str
) -> list[float]:
    """p50 of ``minuend`` minus p50 of ``subtrahend`` in each round where both were measured, in ms."""
    return [r[minuend]["p50"] - r[subtrahend]["p50"] for r in rounds if minuend in r and subtrahend in r]


def summarize_rate(rounds: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Per server the medians over the rounds of each figure; per pair the median within-round difference."""
    servers = sorted({name for r in rounds for name in r})
    keys = sorted({key for r in rounds for figures in r.values() for key in figures})
    return {
        "servers": {
            name: {key: median_or_none([r[name].get(key) for r in rounds if name in r]) for key in keys}
            for name in servers
        },
        "differences": {
            label: median_or_none(list(round_differences(rounds, minuend, subtrahend)))
            for label, minuend, subtrahend, _ in DIFFERENCES
        },
    }


def _figures(result: dict[str, Any]) -> dict[str, float] | None:
    """What one open-loop load says of a server, or None when it had errors or measured nothing."""
    latency, late = result.get("latency_ms"), result.get("dispatch_late_ms")
    if result.get("errors") or not isinstance(latency, dict):
        return None
    figures = {"p50": latency["p50"], "p99": latency["p99"], "served_rps": result["served_rps"]}
    if isinstance(late, dict):
        figures["dispatch_late_p50"] = late["p50"]
    return {key: float(value) for key, value in figures.items()}


def _capacity(server: RunningServer, spec: LoadSpec) -> float | None:
    result = run_loadgen(spec, server)
    rps = result.get("rps")
    return float(rps) if isinstance(rps, int | float) and not result.get("errors") else None


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    scenarios = args.scenarios.split(",")
    loads = [float(load) for load in args.loads.split(",")]
    results: dict[str, Any] = {"rounds": args.rounds, "duration": args.duration, "points": {}}
    with serving(SERVERS, scenarios) as servers:
        for scenario in scenarios:
            for conc in (int(c) for c in args.concurrency.split(",")):
                specs = {
                    name: spec
                    for name, server in servers.items()
                    if (spec := load_spec(server, SCENARIOS[scenario], conc, args.duration, args.warmup))
                }
                capacity = _capacity(servers[CAPACITY_OF], specs[CAPACITY_OF])
                if capacity is None:
                    print(f"{scenario} c={conc}: {CAPACITY_OF} failed its closed-loop load", file=sys.stderr)
                    return 1
                print(
                    f"{scenario:<12} c={conc:<3} {CAPACITY_OF} closed loop {capacity:,.0f} req/s", flush=True
                )
                for load, rate in zip(loads, offered_rates(capacity, loads), strict=True):
                    rounds: list[dict[str, dict[str, float]]] = []
                    for seed in range(args.rounds):
                        measured = {
                            name: _figures(
                                run_loadgen(dataclasses.replace(spec, rate=rate, seed=seed), servers[name])
                            )
                            for name, spec in specs.items()
                        }
                        rounds.append({name: m for name, m in measured.items() if m is not None})
                    summary = summarize_rate(rounds)
                    results["points"][f"{scenario} c={conc} load={load}"] = {
                        "capacity_rps": capacity,
                        "offered_rps": rate,
                        "rounds": rounds,
                        **summary,
                    }
                    _print(load, rate, summary)
    write_results(results, args.out, "rate")
    return 0


def _print(load: float, rate: float, summary: dict[str, Any]) -> None:
    servers = summary["servers"]
    figures = "  ".join(
        f"{name} {s['p50']:.2f}/{s['p99']:.2f} ({s['served_rps']:,.0f} served)"
        for name, s in servers.items()
        if s.get("p50") is not None
    )
    late = median_or_none([s.get("dispatch_late_p50") for s in servers.values()])
    print(f"{'':4}offered {rate:,.0f} req/s ({load:.0%})  p50/p99 ms: {figures}", flush=True)
    differences = "  ".join(
        f"{label} {value:+.2f} ms (target < {target:.1f})"
        for label, _, _, target in DIFFERENCES
        if (value := summary["differences"][label]) is not None
    )
    floor = f"  load generator dispatch late p50 {late:.2f} ms" if late is not None else ""
    print(f"{'':8}{differences}{floor}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
