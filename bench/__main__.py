"""``python -m bench``: the whole comparison in one run; prints the table and ratios, writes JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.options import BenchOptions
from bench.report import render
from bench.runner import run_bench
from bench.variants import BENCH_DIR


def _parse(argv: list[str] | None) -> BenchOptions:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (about two minutes)")
    parser.add_argument("--duration", type=float, help="measured seconds per run (default 5)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each run (default 1)")
    parser.add_argument("--concurrency", help="comma-separated, default 1,16,64")
    parser.add_argument("--repeat", type=int, help="runs per point; the median is reported (default 3)")
    parser.add_argument("--only", help="comma-separated server, scenario or 'slow' names")
    parser.add_argument("--slow-streams", type=int, help="concurrent slow streams (default 1000)")
    parser.add_argument("--slow-seconds", type=float, help="length of each slow stream (default 30)")
    parser.add_argument("--tail", type=float, help="seconds after the load in which deferred CPU is counted")
    parser.add_argument("--mlflow-python", help="a python with mlflow>=3 installed, to measure MLflow too")
    parser.add_argument("--out", type=Path, help="JSON results path (default bench/results/<timestamp>.json)")
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    options = BenchOptions(out=args.out or BENCH_DIR / "results" / f"{stamp}.json")
    if args.quick:
        options = options.quick_preset()
    overrides = {
        "duration": args.duration,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "slow_streams": args.slow_streams,
        "tail": args.tail,
        "mlflow_python": args.mlflow_python,
        "concurrency": tuple(int(c) for c in args.concurrency.split(",")) if args.concurrency else None,
        "only": tuple(args.only.split(",")) if args.only else None,
        "slow_deltas": round(args.slow_seconds * 10) if args.slow_seconds else None,
    }
    fields = {key: value for key, value in overrides.items() if value is not None}
    return BenchOptions(**{**vars(options), **fields})


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    results = run_bench(options)
    print(render(results))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
