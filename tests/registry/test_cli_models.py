from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from registry import ModelStatus, RegistryClient
from runtime.cli.main import main
from runtime.cli.models import agent_validator

REPO_ROOT = Path(__file__).resolve().parents[2]
ECHO = REPO_ROOT / "examples" / "echo_agent.py"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def locations(tmp_path: Path) -> list[str]:
    return ["--store-url", f"sqlite:///{tmp_path / 'cli.db'}", "--artifact-root", str(tmp_path / "artifacts")]


@pytest.fixture
def run(locations: list[str], capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(["models", *locations, *args])
        out, err = capsys.readouterr()
        return code, out.strip(), err.strip()

    return invoke


def test_log_register_alias_show_list_workflow(run: Run, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("httpx\n")
    code, uri, err = run(
        "log",
        str(ECHO),
        "--name",
        "echo",
        "--param",
        "k=v",
        "--tag",
        "team=cx",
        "--requirements",
        str(requirements),
    )
    assert (code, err) == (0, "")
    assert uri.startswith("models:/m-")

    assert run("register", uri, "--name", "support-bot") == (0, "1", "")
    assert run("register", uri, "--name", "support-bot") == (0, "2", "")
    assert run("alias", "support-bot", "champion", "1") == (0, "support-bot@champion -> 1", "")

    code, table, _ = run("show", "models:/support-bot@champion")
    assert code == 0
    assert "version    support-bot/1 (aliases: champion)" in table
    assert "params     k=v" in table
    code, raw, _ = run("show", "models:/support-bot/latest", "--json")
    shown = json.loads(raw)
    assert (shown["version"]["version"], shown["model"]["status"]) == (2, "READY")
    assert Path(shown["local_path"], "echo_agent.py").is_file()

    code, listing, _ = run("list")
    assert listing.splitlines()[1].split()[:3] == ["support-bot", "2", "champion=1"]
    assert run("alias", "--delete", "support-bot", "champion") == (0, "", "")
    assert json.loads(run("list", "--json")[1])[0]["aliases"] == {}


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["show", "models:/nobody@champion"], 1, "error: alias 'champion' of model 'nobody' not found"),
        (["show", "models:/bad name/1"], 2, "error: malformed model URI"),
        (["register", "models:/m-" + "0" * 32, "--name", "x"], 1, "error: logged model 'm-0+' not found"),
        (["alias", "x", "champion"], 2, "error: alias needs NAME ALIAS VERSION"),
        (["alias", "--delete", "x", "champion", "3"], 2, "error: alias --delete takes NAME ALIAS"),
        (["alias", "--delete", "x", "champion"], 1, "error: alias 'champion' of model 'x' not found"),
        (["log", "missing.py", "--name", "x"], 1, "error: code file 'missing.py' does not exist"),
        (
            ["log", str(ECHO), "--name", "x", "--param", "novalue"],
            2,
            "error: --param 'novalue' must look like",
        ),
    ],
)
def test_errors_are_one_line_with_usage_or_failure_exit_codes(
    run: Run, args: list[str], exit_code: int, message: str
) -> None:
    code, out, err = run(*args)
    assert (code, out) == (exit_code, "")
    assert len(err.splitlines()) == 1
    assert err.startswith("error: ")
    assert re.match(message, err), err


def test_a_code_file_that_does_not_load_leaves_a_failed_model(
    run: Run, tmp_path: Path, locations: list[str]
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def oops(:\n")
    code, out, err = run("log", str(broken), "--name", "broken")
    assert (code, out) == (1, "")
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    with RegistryClient(locations[1], locations[3]) as client:
        [model] = client.search_logged_models(name="broken")
    assert model.status is ModelStatus.FAILED


def test_validator_hook_comes_from_the_runtime_loader() -> None:
    assert agent_validator() is not None


def test_usage_errors_exit_2_from_argparse(locations: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["models", *locations, "register", "models:/x/1"])
    assert info.value.code == 2
    assert "--name" in capsys.readouterr().err


def test_entry_point_runs_as_a_process(locations: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", "models", "list", *locations],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "no registered models", "")
