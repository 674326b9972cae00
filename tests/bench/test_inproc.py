"""The in-process driver reads the loop thread's CPU over real requests served through the app."""

from __future__ import annotations

import re

import pytest

from bench import inproc


def test_it_prints_the_loops_cpu_per_request_of_each_mode_and_the_ratio(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert inproc.main(["--modes", "on,off", "--requests", "300", "--warmup", "20", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    found = dict(re.findall(r"/invocations, tracing and metrics (on|off): ([\d.]+) us of loop CPU", out))
    assert set(found) == {"on", "off"} and all(float(v) > 0 for v in found.values())
    ratio = re.search(r"on / off: ([\d.]+)x", out)
    assert ratio is not None
    assert float(ratio.group(1)) == pytest.approx(float(found["on"]) / float(found["off"]), abs=0.01)


def test_unknown_modes_are_refused() -> None:
    with pytest.raises(SystemExit):
        inproc.main(["--modes", "sideways"])
