"""The process-wide loader that ``load_prompt`` uses, and how the composition root replaces it.

Agent code calls a plain function, as with ``mlflow.genai.load_prompt``, so the loader has to be reachable
without arguments: one per process, set by ``configure`` when a server starts (its registry client, its
cache TTL) and otherwise created on first use from the environment. Building it reads no environment and
opens nothing until the first load.
"""

from __future__ import annotations

import functools
import threading

from registry.client import RegistryClient
from registry.entities import PromptVersion
from registry.templates import Template
from runtime.config import Settings
from runtime.prompts.loader import PromptLoader
from runtime.prompts.source import ClientSource

__all__ = ["aload_prompt", "configure", "current_loader", "load_prompt", "unconfigure"]

_lock = threading.Lock()
_loader: PromptLoader | None = None


def configure(client: RegistryClient | None = None, *, ttl: float | None = None) -> PromptLoader:
    """Make ``load_prompt`` read through ``client`` (else the environment's store) with a fresh cache.

    The server calls this at startup with its own client and ``RUNTIME_PROMPT_CACHE_TTL``; the previous
    loader is closed (and with it any client it opened itself).
    """
    global _loader
    env = Settings.from_env() if client is None or ttl is None else None
    if client is not None:
        source = ClientSource(client)
    else:
        assert env is not None
        source = ClientSource(opener=functools.partial(_open, env))
    if ttl is None:
        assert env is not None
        ttl = env.prompt_cache_ttl
    fresh = PromptLoader(source, ttl)
    with _lock:
        previous, _loader = _loader, fresh
    if previous is not None:
        previous.close()
    return fresh


def _open(settings: Settings) -> RegistryClient:
    return RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root)


def unconfigure(loader: PromptLoader | None = None) -> None:
    """Drop ``loader`` if it is still the current one; without an argument, whatever is current.

    A server stopping after another one started must leave the newer server's loader in place. With nothing
    configured, the next ``load_prompt`` opens the environment's store again.
    """
    global _loader
    with _lock:
        current = _loader
        if current is None or (loader is not None and current is not loader):
            return
        _loader = None
    current.close()


def current_loader() -> PromptLoader:
    loader = _loader
    if loader is not None:
        return loader
    with _lock:
        if _loader is not None:
            return _loader
    return configure()


def load_prompt(
    name_or_uri: str, version: int | str | None = None, *, fallback: Template | None = None
) -> PromptVersion:
    """Load a prompt version: ``prompts:/support@production``, ``prompts:/support/3`` or a bare name.

    Served from the process cache when it can be (versions never change; aliases are re-read after
    ``RUNTIME_PROMPT_CACHE_TTL`` seconds or at once when Redis announces a move), and recorded on the
    current span and trace. While the store is unreachable the version an alias last pointed at keeps
    serving; ``fallback`` (a template text or chat messages) serves when nothing is cached yet.
    """
    return current_loader().load(name_or_uri, version, fallback=fallback)


async def aload_prompt(
    name_or_uri: str, version: int | str | None = None, *, fallback: Template | None = None
) -> PromptVersion:
    """``load_prompt`` for async agents: a cache miss reads the store in a thread with a deadline, off the
    event loop (see :meth:`PromptLoader.aload`)."""
    loader = current_loader()
    if loader.is_cached(name_or_uri, version):
        return loader.load(name_or_uri, version, fallback=fallback)
    return await loader.aload(name_or_uri, version, fallback=fallback)
