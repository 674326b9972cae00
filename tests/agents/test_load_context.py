"""``load_context(context)`` as MLflow calls it: after loading, with the logged config as ``model_config``."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.client import RegistryClient
from runtime.agents.loader import load_agent
from runtime.errors import AgentLoadError

AGENT = """
from runtime.agents import ResponsesAgent, set_agent


class Configured(ResponsesAgent):
    def load_context(self, context):
        if context.model_config.get("fail"):
            raise RuntimeError("cannot reach the index")
        self.settings = dict(context.model_config)
        self.artifacts = dict(context.artifacts)

    def predict(self, request):
        return {"output": [self.create_text_output_item(self.settings["greeting"], "m1")]}


set_agent(Configured())
"""


def _logged(tmp_path: Path, config_text: str | None) -> Path:
    code = tmp_path / "configured.py"
    code.write_text(AGENT)
    config = None
    if config_text is not None:
        config = tmp_path / "agent.yaml"
        config.write_text(config_text)
    with RegistryClient(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "artifacts") as client:
        logged = client.log_model(code, "configured", config=config)
        return client.resolve(logged.uri).local_path


def test_a_logged_config_reaches_load_context(tmp_path: Path) -> None:
    agent = load_agent(_logged(tmp_path, "greeting: hello from config\nretries: 3\n"))
    assert agent.settings == {"greeting": "hello from config", "retries": 3}
    assert agent.artifacts == {}


def test_without_a_config_load_context_gets_an_empty_one(tmp_path: Path) -> None:
    agent = load_agent(_logged(tmp_path, None))
    assert agent.settings == {}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("fail: true\n", "Configured.load_context raised RuntimeError: cannot reach the index"),
        ("- a list\n- not a mapping\n", "is not a mapping of names to values"),
        ("greeting: [unclosed\n", "cannot read the config file agent.yaml"),
    ],
)
def test_a_failing_load_context_or_a_bad_config_is_a_load_error(
    tmp_path: Path, config: str, message: str
) -> None:
    with pytest.raises(AgentLoadError, match=message.replace("[", r"\[")):
        load_agent(_logged(tmp_path, config))


def test_a_served_file_gets_load_context_too(tmp_path: Path) -> None:
    code = tmp_path / "plain.py"
    code.write_text(AGENT)
    agent = load_agent(code)
    assert agent.settings == {} and agent.artifacts == {}
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "agent.py").write_text(AGENT)
    assert load_agent(folder).settings == {}
