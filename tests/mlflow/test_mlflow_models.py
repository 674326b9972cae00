"""Models that MLflow 3 itself logged: served as folders and imported into the registry, streaming included.

Needs the ``mlflow`` extra (installed by the test command). Without it these tests fail with a clear message
rather than being skipped, so a missing install step is never mistaken for a pass.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from registry.client import RegistryClient
from runtime.agents.mlflow_model import import_mlflow_model
from runtime.agents.validate import validate_agent_dir
from runtime.app import create_app
from runtime.config import Settings
from runtime.errors import AgentLoadError
from runtime.loading import load_target
from runtime.protocol.agent import ResponsesAgentRequest
from tests.servers import serve_app

# MLflow warns about its own type hints and deprecations while saving; those are not ours to fix.
pytestmark = [
    pytest.mark.mlflow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

try:
    import mlflow
except ImportError:  # pragma: no cover - the test command installs it
    mlflow = None

MLFLOW_AGENT = """
import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent


class Shout(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        text = request.input[-1].content.upper()
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")],
                                      custom_outputs={"via": "mlflow"})

    def predict_stream(self, request: ResponsesAgentRequest):
        text = request.input[-1].content.upper()
        for word in text.split():
            yield ResponsesAgentStreamEvent(**self.create_text_delta(word + " ", "m1"))
        yield ResponsesAgentStreamEvent(type="response.output_item.done",
                                        item=self.create_text_output_item(text, "m1"))


mlflow.models.set_model(Shout())
"""


@pytest.fixture
def mlflow_model(tmp_path: Path) -> Path:
    if mlflow is None:
        pytest.fail(
            "mlflow is not installed: run the test command (bash scripts/test), which installs the "
            "mlflow extra",
            pytrace=False,
        )
    code = tmp_path / "shout_agent.py"
    code.write_text(MLFLOW_AGENT)
    out = tmp_path / "mlflow-model"
    mlflow.pyfunc.save_model(
        path=str(out), python_model=str(code), input_example={"input": [{"role": "user", "content": "hi"}]}
    )
    assert (out / "MLmodel").is_file()
    return out


def test_an_mlflow_logged_folder_serves_on_both_endpoints_with_streaming(mlflow_model: Path) -> None:
    settings = Settings(model=str(mlflow_model), sse_ping_interval=0)
    with serve_app(create_app(settings)) as url:
        first = {"input": [{"role": "user", "content": "hello there"}]}
        r = httpx.post(url + "/invocations", json=first, timeout=60)  # the first call may import mlflow
        assert r.status_code == 200, r.text
        assert r.json()["output"][0]["content"][0]["text"] == "HELLO THERE"
        assert r.json()["custom_outputs"] == {"via": "mlflow"}
        r = httpx.post(
            url + "/invocations", json={"input": [{"role": "user", "content": "a b"}], "stream": True}
        )
        frames = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        assert frames[-1] == "[DONE]"
        deltas = [json.loads(f)["delta"] for f in frames[:-1] if "delta" in f]
        assert deltas == ["A ", "B "]  # MLflow's own server cannot stream this at all
        with (
            OpenAI(base_url=url + "/v1", api_key="x") as client,
            client.responses.stream(model="shout", input="quiet words") as stream,
        ):
            assert stream.get_final_response().output_text == "QUIET WORDS"


def test_import_mlflow_registers_a_logged_model(mlflow_model: Path, tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"))
    with RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root) as client:
        logged = import_mlflow_model(client, mlflow_model, "shout", validate_agent_dir)
        assert logged.status == "READY"
        assert logged.tags["source"] == "mlflow"
        client.register_model(logged.uri, "shout-bot")
    agent = load_target("models:/shout-bot/1", settings)
    with serve_app(create_app(settings.with_(model="models:/shout-bot/1"), agent=agent)) as url:
        r = httpx.post(url + "/v1/responses", json={"input": "ok"})
        assert r.json()["output"][0]["content"][0]["text"] == "OK"
        assert r.headers["x-runtime-model-version"] == "1"


def test_a_folder_that_is_not_a_code_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n")
    with pytest.raises(AgentLoadError, match="not an MLflow models-from-code agent"):
        load_target(str(tmp_path), Settings())


def test_import_mlflow_cli(mlflow_model: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.servers import ROOT

    env = {
        **os.environ,
        "RUNTIME_STORE_URL": f"sqlite:///{tmp_path}/r.db",
        "RUNTIME_ARTIFACT_ROOT": str(tmp_path / "a"),
        "MLFLOW_TRACKING_URI": f"file://{tmp_path}/mlruns",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime.cli.main",
            "models",
            "import-mlflow",
            str(mlflow_model),
            "--name",
            "shout",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("models:/m-")
    refused = subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", "models", "import-mlflow", str(tmp_path), "--name", "x"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "no MLmodel file" in refused.stderr


CONFIGURED_AGENT = """
import mlflow
from mlflow.models import ModelConfig
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse

CONFIG = ModelConfig(development_config={"greeting": "dev-config"})


class Configured(ResponsesAgent):
    def __init__(self):
        self.loaded = "unset"

    def load_context(self, context):
        self.loaded = f"{context.model_config.get('greeting')}+{sorted(context.artifacts)}"

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        text = f"{CONFIG.get('greeting')} / {self.loaded}"
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")])


mlflow.models.set_model(Configured())
"""


def test_the_logged_model_config_and_load_context_apply_as_under_mlflow(tmp_path: Path) -> None:
    """MLflow sets the logged model_config while the code runs (ModelConfig reads it) and calls
    load_context with it and the artifacts; served, imported or loaded by MLflow, the agent answers alike."""
    if mlflow is None:
        pytest.fail("mlflow is not installed: run the test command (bash scripts/test)", pytrace=False)
    code = tmp_path / "configured_agent.py"
    code.write_text(CONFIGURED_AGENT)
    (tmp_path / "notes.txt").write_text("an artifact")
    out = tmp_path / "configured"
    mlflow.pyfunc.save_model(
        path=str(out),
        python_model=str(code),
        model_config={"greeting": "logged-config"},
        artifacts={"notes": str(tmp_path / "notes.txt")},
    )
    request = {"input": [{"role": "user", "content": "hi"}]}
    expected = "logged-config / logged-config+['notes']"
    assert mlflow.pyfunc.load_model(str(out)).predict(request)["output"][0]["content"][0]["text"] == expected

    with serve_app(create_app(Settings(model=str(out)))) as url:  # the folder MLflow saved
        r = httpx.post(url + "/invocations", json=request, timeout=60)
        assert r.json()["output"][0]["content"][0]["text"] == expected
    settings = Settings(home=str(tmp_path / "home"))
    with RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root) as client:
        logged = import_mlflow_model(client, out, "configured", None)
    agent = load_target(logged.uri, settings)  # imported: its config kept (artifacts are MLflow's own)
    reply = asyncio.run(agent.runner.predict(ResponsesAgentRequest.model_validate(request)))
    assert reply.output[0]["content"][0]["text"] == "logged-config / logged-config+[]"
