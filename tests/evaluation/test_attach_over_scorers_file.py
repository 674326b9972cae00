"""An attachment named like a scorer of the ``--scorers`` file: the README's own ``scorers.py`` (``slo =
builtin.latency_slo(max_ms=2000)``) with its own ``evaluate attach ... 'latency_slo:{"max_ms": 500}'``.

Decided: arguments always mean the built-in, and the attachment replaces the file's scorer of that name for
the model's traffic (one name, one score series, as a registered scorer's update in MLflow), logged when it
begins and when a detach gives the file's scorer back. ``attach`` refuses arguments a built-in does not take.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.client import RegistryClient
from runtime.app import create_app
from runtime.cli.main import main
from runtime.evaluation.catalog import ScorerCatalog
from runtime.evaluation.job import ScorerRef
from tests.evaluation.conftest import settings_for, write_scorers
from tests.servers import ROOT, ThreadServer, wait_until

README_SCORERS = """
from runtime.evaluation import builtin

@scorer
def concise(outputs: str) -> Feedback:
    return Feedback(len(outputs) < 800, rationale=f"{len(outputs)} characters")

slo = builtin.latency_slo(max_ms=2000)
"""


@pytest.fixture
def scorers(tmp_path: Path) -> Path:
    return write_scorers(tmp_path / "scorers.py", README_SCORERS)


def test_arguments_mean_the_builtin_and_no_arguments_the_files_scorer(scorers: Path) -> None:
    catalog = ScorerCatalog.from_file(scorers)
    assert catalog.resolve(ScorerRef(name="latency_slo")).description == "Request latency at most 2000 ms."
    strict = catalog.resolve(ScorerRef(name="latency_slo", args={"max_ms": 500}))
    assert (strict.name, strict.description) == ("latency_slo", "Request latency at most 500.0 ms.")
    with pytest.raises(TypeError, match="scorer 'concise' from the scorers file takes no arguments"):
        catalog.resolve(ScorerRef(name="concise", args={"limit": 3}))


@pytest.mark.parametrize(
    ("scorer", "message"),
    [
        ('latency_slo:{"max_ms": "fast"}', "argument 'max_ms' of built-in scorer 'latency_slo'"),
        ('latency_slo:{"max_seconds": 1}', "takes no argument 'max_seconds' (it takes: max_ms, name)"),
        ('must_include:{"terms": "refund"}', "argument 'terms' of built-in scorer 'must_include'"),
        ('concise:{"limit": 3}', "scorer 'concise' that is not a built-in takes no arguments"),
    ],
)
def test_attach_refuses_arguments_a_scorer_does_not_take(
    client: RegistryClient, capsys: pytest.CaptureFixture[str], scorer: str, message: str
) -> None:
    model = client.log_model(ROOT / "examples" / "echo_agent.py", "echo")
    uri = f"models:/{model.model_id}"
    assert main(["evaluate", "attach", uri, "--scorer", scorer, "--store-url", client.store_url]) == 2
    assert message in capsys.readouterr().err
    assert not any(k.startswith("runtime.scorer.") for k in client.get_logged_model(model.model_id).tags)


@pytest.fixture
def served(tmp_path: Path, client: RegistryClient, scorers: Path) -> Iterator[tuple[str, str]]:
    """(model URI, base URL) of a real server of the echo model with the README's scorers file."""
    model = client.log_model(ROOT / "examples" / "echo_agent.py", "echo")
    uri = f"models:/{model.model_id}"
    settings = settings_for(tmp_path, model=uri, scorers=str(scorers), scorer_poll_interval=0.1)
    with ThreadServer(create_app(settings)) as server:
        yield uri, server.url


def _latency_rationales(url: str) -> list[str]:
    httpx.post(f"{url}/invocations", json={"input": [{"role": "user", "content": "hi"}]}, timeout=10)
    found = httpx.get(f"{url}/api/assessments", params={"name": "latency_slo"}, timeout=5).json()
    return [a["error"] or a["rationale"] for a in found["assessments"]]


def test_the_readme_attach_runs_the_builtin_with_its_arguments_over_the_files_scorer(
    served: tuple[str, str],
    client: RegistryClient,
    scorers: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri, url = served
    caplog.set_level(logging.WARNING, "runtime.evaluation")
    assert wait_until(lambda: any("<= 2000 ms" in r for r in _latency_rationales(url)), timeout=30)

    store: list[Any] = ["--store-url", client.store_url, "--scorers", str(scorers)]
    command = ["evaluate", "attach", uri, "--scorer", 'latency_slo:{"max_ms": 500}', "--rate", "1"]
    assert main([*command, *store]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("attached latency_slo")
    assert "replaces it for this model's traffic (the built-in with these arguments)" in err

    assert wait_until(lambda: "<= 500 ms" in _latency_rationales(url)[0], timeout=30, interval=0.2)
    newest = _latency_rationales(url)[0]
    assert "takes no arguments" not in newest
    assert any("replaces the --scorers file's latency_slo" in r.getMessage() for r in caplog.records)
    concise = httpx.get(f"{url}/api/assessments", params={"name": "concise"}, timeout=5).json()
    assert concise["assessments"]  # the file's other scorers keep scoring

    assert main(["evaluate", "detach", uri, "--scorer", "latency_slo", *store]) == 0
    assert wait_until(lambda: "<= 2000 ms" in _latency_rationales(url)[0], timeout=30, interval=0.2)
    # The server logs the detach as it notices it, which may come just after the first score it makes.
    assert wait_until(
        lambda: any(
            "the --scorers file's latency_slo scores it again" in r.getMessage() for r in caplog.records
        ),
        timeout=10,
    )
