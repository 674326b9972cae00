"""``RUNTIME_HOME`` places the embedded registry for every command alike: what ``runtime models`` logs is
what ``runtime serve`` (and the other commands) find there."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cli.main import main
from runtime.config import Settings
from runtime.loading import load_target

AGENT = """
from runtime.agents import ResponsesAgent, set_agent


class Home(ResponsesAgent):
    def predict(self, request):
        return {"output": [self.create_text_output_item("home", "m1")]}


set_agent(Home())
"""


def test_models_commands_use_runtime_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    for name in ("RUNTIME_STORE_URL", "RUNTIME_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNTIME_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home_agent.py").write_text(AGENT)
    assert main(["models", "log", "home_agent.py", "--name", "home"]) == 0
    uri = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["models", "register", uri, "--name", "homebot"]) == 0
    assert main(["models", "alias", "homebot", "champion", "1"]) == 0
    assert (home / "runtime.db").is_file() and not (tmp_path / ".runtime").exists()
    agent = load_target("models:/homebot@champion", Settings.from_env())  # what runtime serve resolves
    assert agent.info.name == "homebot"
