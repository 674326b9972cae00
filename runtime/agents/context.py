"""``load_context``: what MLflow calls once a model is loaded, with its artifacts and its ``model_config``.

MLflow agents often open their clients, indexes and settings there rather than at import. The runtime calls
it the same way after loading an agent that has one: with the logged config file (YAML or JSON, as
``runtime models log --config`` copied it) for a LoggedModel, with the MLmodel's ``config`` and artifacts
for a folder MLflow saved (then with MLflow's own ``PythonModelContext``, and with MLflow's model config
set while the code is imported, so ``mlflow.models.ModelConfig`` reads the logged values, as under MLflow).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runtime.errors import AgentLoadError

__all__ = ["AgentContext", "call_load_context", "config_file_values", "mlflow_model_config"]


@dataclass(frozen=True)
class AgentContext:
    """MLflow's ``PythonModelContext`` shape: artifact name -> local path, and the model's config."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)


def config_file_values(path: Path) -> dict[str, Any]:
    """A logged config file's values (a YAML or JSON mapping); AgentLoadError for anything else."""
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise AgentLoadError(f"cannot read the config file {path.name}{at}: {first}") from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise AgentLoadError(f"the config file {path.name} is not a mapping of names to values")
    return values


def _is_mlflow(agent: Any) -> bool:
    return any(cls.__module__.startswith("mlflow.") for cls in type(agent).__mro__)


def call_load_context(agent: Any, artifacts: Mapping[str, str], model_config: Mapping[str, Any]) -> None:
    """Call ``agent.load_context(context)`` when the agent has one; its failure is a load failure."""
    hook = getattr(agent, "load_context", None)
    if not callable(hook):
        return
    context: Any = AgentContext(dict(artifacts), dict(model_config))
    if _is_mlflow(agent):
        from mlflow.pyfunc import model as mlflow_model

        context = mlflow_model.PythonModelContext(  # type: ignore[no-untyped-call]  # MLflow's, untyped
            artifacts=dict(artifacts), model_config=dict(model_config)
        )
    try:
        hook(context)
    except Exception as exc:
        raise AgentLoadError(
            f"{type(agent).__name__}.load_context raised {type(exc).__name__}: {exc}"
        ) from exc


@contextlib.contextmanager
def mlflow_model_config(values: Mapping[str, Any] | None) -> Iterator[None]:
    """MLflow's model config set while an MLflow model's code is imported (what ``ModelConfig`` reads),
    when MLflow is installed and the model has a config."""
    if not values or importlib.util.find_spec("mlflow") is None:
        yield
        return
    from mlflow.models import model_config as mlflow_config

    mlflow_config._set_model_config(dict(values))  # type: ignore[no-untyped-call]  # MLflow's, untyped
    try:
        yield
    finally:
        mlflow_config._set_model_config(None)  # type: ignore[no-untyped-call]
