"""Turn what the user asked to serve (a file, a folder, later a ``models:/`` URI) into a LoadedAgent."""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path

from runtime.agents.loader import load_agent
from runtime.agents.runner import AgentRunner
from runtime.config import Settings
from runtime.errors import AgentLoadError
from runtime.protocol.call import ModelInfo
from runtime.serving import LoadedAgent

__all__ = ["load_target"]


def load_target(target: str, settings: Settings, executor: Executor | None = None) -> LoadedAgent:
    if target.startswith("models:/"):
        from runtime.model_source import load_model_uri

        loaded: LoadedAgent = load_model_uri(target, settings, executor)
        return loaded
    agent = load_agent(target)
    try:
        runner = AgentRunner(agent, executor=executor, request_adapter=_adapter_for(agent))
    except TypeError as exc:
        raise AgentLoadError(str(exc)) from exc
    name = getattr(agent, "name", None) or Path(target).stem
    return LoadedAgent(runner=runner, info=ModelInfo(name=name, uri=str(target)))


def _adapter_for(agent: object):  # type: ignore[no-untyped-def]  # returns an optional converter
    from runtime.agents.mlflow_model import mlflow_request_adapter

    return mlflow_request_adapter(agent)
