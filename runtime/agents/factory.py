"""One way to wrap a loaded agent object for serving, whatever loaded it."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

from runtime.agents.mlflow_model import mlflow_request_adapter
from runtime.agents.runner import AgentRunner
from runtime.errors import AgentLoadError

__all__ = ["build_runner"]


def build_runner(agent: Any, executor: Executor | None = None) -> AgentRunner:
    """An AgentRunner for ``agent`` (MLflow agents get their request type); AgentLoadError if unusable."""
    try:
        return AgentRunner(agent, executor=executor, request_adapter=mlflow_request_adapter(agent))
    except TypeError as exc:
        raise AgentLoadError(str(exc)) from exc
