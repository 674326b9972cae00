"""The callgrind driver serves real requests through the app (here without valgrind: nothing is counted)."""

from __future__ import annotations

import pytest

from bench import callgrind


@pytest.mark.parametrize("mode", ["on", "off"])
def test_the_driver_serves_requests_through_the_app(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_CALLGRIND", raising=False)
    args = ["--inner", mode, "--requests", "20", "--warmup", "5", "--traceparent"]
    assert callgrind.main(args) == 0  # it exits with an error unless every request answered 200
