"""MLflow 3 models: folders with an ``MLmodel`` file (models-from-code ResponsesAgents), and MLflow agents.

An MLflow ``ResponsesAgent`` expects MLflow's own request type; :func:`mlflow_request_adapter` converts ours
(the JSON is the same, so it is a re-validation). Nothing here imports mlflow unless the agent is MLflow's.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from runtime.agents.context import call_load_context, mlflow_model_config
from runtime.errors import AgentLoadError
from runtime.protocol.agent import ResponsesAgentRequest

__all__ = ["import_mlflow_model", "load_mlflow_model", "mlflow_request_adapter", "read_mlmodel"]

_CODE_LOADER = "mlflow.pyfunc.loaders.code_model"


def read_mlmodel(folder: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load((folder / "MLmodel").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AgentLoadError(f"cannot read {folder / 'MLmodel'}: {exc}") from exc
    if not isinstance(data, dict):
        raise AgentLoadError(f"{folder / 'MLmodel'} is not a YAML mapping")
    return data


def _code_file(folder: Path, mlmodel: dict[str, Any]) -> Path:
    pyfunc = (mlmodel.get("flavors") or {}).get("python_function") or {}
    if pyfunc.get("loader_module") != _CODE_LOADER:
        raise AgentLoadError(
            f"{folder} is not an MLflow models-from-code agent (loader_module is "
            f"{pyfunc.get('loader_module')!r}, expected {_CODE_LOADER})"
        )
    code = str(pyfunc.get("model_code_path") or "")
    if not code:
        raise AgentLoadError(f"{folder / 'MLmodel'} names no model_code_path")
    candidates = [folder / code, folder / Path(code).name, folder / "code" / Path(code).name]
    for path in candidates:
        if path.is_file():
            return path
    raise AgentLoadError(f"the agent code {code!r} named by {folder / 'MLmodel'} is not in the folder")


def load_mlflow_model(folder: Path) -> Any:
    """The agent of a folder MLflow saved, loaded as MLflow loads it: its logged ``model_config`` set while
    its code runs (``ModelConfig`` reads it), then ``load_context`` with that config and its artifacts."""
    from runtime.agents.loader import load_agent_file

    mlmodel = read_mlmodel(folder)
    code_dir = folder / "code"
    extra = [code_dir] if code_dir.is_dir() else []
    pyfunc = (mlmodel.get("flavors") or {}).get("python_function") or {}
    logged = pyfunc.get("config")
    config: dict[str, Any] = logged if isinstance(logged, dict) else {}
    artifacts = {
        str(name): str(folder / str(info.get("path", "")))
        for name, info in (pyfunc.get("artifacts") or {}).items()
        if isinstance(info, dict)
    }
    with mlflow_model_config(config):
        agent = load_agent_file(_code_file(folder, mlmodel), code_paths=extra)
    call_load_context(agent, artifacts, config)
    return agent


def mlflow_request_adapter(agent: Any) -> Callable[[ResponsesAgentRequest], Any] | None:
    """A converter to MLflow's request type when ``agent`` is an MLflow ResponsesAgent, else None."""
    if not type(agent).__module__.startswith("mlflow") and not any(
        base.__module__.startswith("mlflow") for base in type(agent).__mro__
    ):
        return None
    responses = sys.modules.get("mlflow.types.responses")
    if responses is None:
        return None
    mlflow_request = responses.ResponsesAgentRequest

    def adapt(request: ResponsesAgentRequest) -> Any:
        return mlflow_request(**request.model_dump(exclude_none=True))

    return adapt


def import_mlflow_model(
    client: Any, folder: Path, name: str, validate: Callable[[Path], object] | None
) -> Any:
    """Log an MLflow models-from-code folder as a LoggedModel: its code, code paths, requirements, example.

    ``client`` is a ``registry.RegistryClient``. The MLflow model's identity is kept in tags.
    """
    import json

    mlmodel = read_mlmodel(folder)
    code = _code_file(folder, mlmodel)
    code_dir = folder / "code"
    requirements = folder / "requirements.txt"
    example_file = folder / "input_example.json"
    example = json.loads(example_file.read_text()) if example_file.is_file() else None
    tags = {"source": "mlflow", "mlflow.version": str(mlmodel.get("mlflow_version", ""))}
    for key in ("model_uuid", "model_id"):
        if mlmodel.get(key):
            tags[f"mlflow.{key}"] = str(mlmodel[key])
    prompts = [str(p) for p in mlmodel.get("prompts") or []]
    logged_config = ((mlmodel.get("flavors") or {}).get("python_function") or {}).get("config")
    with tempfile.TemporaryDirectory() as scratch:
        config = None
        if isinstance(logged_config, dict) and logged_config:  # MLflow's model_config, as a config file
            config = Path(scratch) / MODEL_CONFIG_FILE
            config.write_text(yaml.safe_dump(logged_config))
        return client.log_model(
            code,
            name,
            tags=tags,
            # MLflow copies each code path (folder or file) into code/ and puts code/ on sys.path: so do we.
            code_paths=sorted(p for p in code_dir.iterdir() if p.name != "__pycache__")
            if code_dir.is_dir()
            else [],
            requirements=requirements if requirements.is_file() else None,
            input_example=example,
            prompts=prompts,
            config=config,
            validate=validate,
        )


MODEL_CONFIG_FILE = "model_config.yaml"  # an imported MLflow model's model_config, as its config file
