"""Fixtures for canary tests: a real Redis under a key prefix of their own, a registry of versions."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from registry.client import RegistryClient
from runtime.agents.validate import validate_agent_dir
from runtime.config import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"
EXAMPLE = {"input": [{"role": "user", "content": "ping"}]}

# One agent source for every version: what it answers and when it fails are filled in per version. It
# reports usage, so token counters have exact expected values.
AGENT = """
from runtime.agents import ResponsesAgent, ResponsesAgentResponse, set_agent
from runtime.agents.chat import last_user_text


class Version(ResponsesAgent):
    name = "bot"

    def predict(self, request):
        text = last_user_text(request.input)
        if {fails_when}:
            raise RuntimeError("deliberately broken")
        return ResponsesAgentResponse(
            output=[self.create_text_output_item("{answer}", "m1")],
            usage={{"input_tokens": 2, "output_tokens": 3}},
        )


set_agent(Version())
"""
NEVER = "False"
ON_FLAKY = "'flaky' in text"
EXCEPT_EXAMPLE = "text != 'ping'"  # passes its input example, fails on real traffic


def delete_prefix(prefix: str) -> None:
    with redis.Redis.from_url(REDIS_URL) as r:
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            r.delete(*keys)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix no other test (or engineer's test run) uses; its keys are deleted afterwards."""
    name = f"test:canary:{uuid.uuid4().hex}"
    yield name
    delete_prefix(name)


@contextlib.contextmanager
def registry_with(tmp_path: Path, answers: tuple[str, ...]) -> Iterator[RegistryClient]:
    """A registry in the test's folder with one version of bot per answer (v1 answers ``answers[0]``, ...),
    v1 as @champion."""
    with RegistryClient(f"sqlite:///{tmp_path / 'runtime.db'}", tmp_path / "artifacts") as client:
        for answer in answers:
            register(client, tmp_path, answer)
        client.set_alias("bot", "champion", 1)
        yield client


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryClient]:
    """bot v1 ("v1") as @champion and v2 ("v2") to canary."""
    with registry_with(tmp_path, ("v1", "v2")) as client:
        yield client


def register(client: RegistryClient, folder: Path, answer: str, fails_when: str = NEVER) -> int:
    """Log and register the next version of ``bot``; validated (it must answer its example)."""
    source = folder / f"src-{answer}"
    source.mkdir(parents=True)
    (source / "agent.py").write_text(AGENT.format(answer=answer, fails_when=fails_when))
    model = client.log_model(source / "agent.py", "bot", input_example=EXAMPLE, validate=validate_agent_dir)
    return client.register_model(f"models:/{model.model_id}", "bot").version


def register_unloadable(client: RegistryClient, folder: Path) -> int:
    """A version that raises on import: logged without validation, as a careless pipeline might."""
    source = folder / "src-broken"
    source.mkdir(parents=True)
    (source / "agent.py").write_text("raise RuntimeError('this version cannot be imported')\n")
    model = client.log_model(source / "agent.py", "bot")
    return client.register_model(f"models:/{model.model_id}", "bot").version


def cli_options(tmp_path: Path, prefix: str) -> list[str]:
    """The canary CLI's options for the test's Redis prefix and its registry (see ``registry``)."""
    return [
        "--redis-url",
        REDIS_URL,
        "--store-url",
        f"sqlite:///{tmp_path / 'runtime.db'}",
        "--prefix",
        prefix,
    ]


def canary_settings(tmp_path: Path, prefix: str, redis_url: str = REDIS_URL, **overrides: Any) -> Settings:
    """A server of ``models:/bot@champion`` from the test's registry (see ``registry``), in canaries under
    ``prefix``; scoring in process, no tracing; ``overrides`` are further settings."""
    values: dict[str, Any] = {
        "model": "models:/bot@champion",
        "home": str(tmp_path / "home"),
        "store_url": f"sqlite:///{tmp_path / 'runtime.db'}",
        "artifact_root": str(tmp_path / "artifacts"),
        "redis_url": redis_url,
        "canary_prefix": prefix,
        "scoring_queue": "local",
        "tracing": False,
    }
    return Settings.from_env(environ={}, **(values | overrides))
