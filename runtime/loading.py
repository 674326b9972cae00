"""Turn what the user asked to serve (a file, a folder, a ``models:/`` URI) into a LoadedAgent."""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path

from registry.model_files import git_source
from runtime.agents.factory import build_runner
from runtime.agents.loader import load_agent
from runtime.config import Settings
from runtime.protocol.call import ModelInfo
from runtime.serving import LoadedAgent

__all__ = ["load_target"]


def load_target(target: str, settings: Settings, executor: Executor | None = None) -> LoadedAgent:
    if target.startswith("models:/"):
        from runtime.model_source import load_model_uri

        loaded: LoadedAgent = load_model_uri(target, settings, executor)
        return loaded
    agent = load_agent(target)
    runner = build_runner(agent, executor)
    name = getattr(agent, "name", None) or Path(target).stem
    source = git_source(Path(target).resolve())  # a file served from a checkout: its commit goes on traces
    commit = source.commit if source is not None else None
    return LoadedAgent(runner=runner, info=ModelInfo(name=name, uri=str(target), source_commit=commit))
