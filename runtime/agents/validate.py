"""Check that a model folder holds an agent that loads and answers its input example.

``runtime models log`` passes :func:`validate_agent_dir` to the registry, which marks the LoggedModel READY
only when it returns; the alias watcher runs the same check before swapping a new version in.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from runtime.agents.factory import build_runner
from runtime.agents.loader import load_agent
from runtime.agents.runner import AgentRunner
from runtime.errors import AgentLoadError
from runtime.protocol.agent import ResponsesAgentRequest

__all__ = ["answer_example", "input_example", "validate_agent_dir"]

_EXAMPLE_FILES = ("input_example.json",)


def input_example(folder: Path) -> dict[str, Any] | None:
    for name in _EXAMPLE_FILES:
        path = folder / name
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except ValueError as exc:
                raise AgentLoadError(f"{path} is not valid JSON") from exc
            return data if isinstance(data, dict) else None
    return None


async def answer_example(runner: AgentRunner, example: dict[str, Any]) -> None:
    """Run the example through ``predict``; any failure is an AgentLoadError naming the cause."""
    try:
        request = ResponsesAgentRequest.model_validate(example)
        await runner.predict(request)
    except Exception as exc:
        raise AgentLoadError(f"the agent failed its input example: {type(exc).__name__}: {exc}") from exc


def validate_agent_dir(folder: Path) -> None:
    agent = load_agent(folder)
    runner = build_runner(agent, None)
    example = input_example(folder)
    if example is not None:
        asyncio.run(answer_example(runner, example))
