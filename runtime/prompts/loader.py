"""``PromptLoader``: cached, alias-aware prompt loading that survives a store outage.

Fixes what MLflow 3 users hit with ``mlflow.genai.load_prompt`` in serving code: every call is a store round
trip (here versions are cached for good and aliases for ``ttl``), an alias move needs a restart (here a Redis
notification or the TTL picks it up) and a store outage fails every request (here the last version the alias
pointed at keeps serving, and ``fallback=`` covers a replica that starts during the outage).

Only an unreachable store is papered over. An unknown prompt, version or alias, a malformed URI and missing
variables are errors the agent author must see, so they raise even when a fallback is given.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Mapping

from pydantic import Field

from registry.entities import ChatMessage, PromptVersion, check_name
from registry.errors import InvalidArgument, StoreUnavailable
from registry.templates import Template
from registry.uris import PromptAliasURI, PromptVersionURI, parse_prompt_uri
from runtime.prompts.cache import PromptCache
from runtime.prompts.recording import Source, record_loaded
from runtime.prompts.source import ClientSource
from runtime.store_calls import store_call

__all__ = ["FallbackPrompt", "PromptLoader", "prompt_reference"]

log = logging.getLogger("runtime.prompts")

_WARN_EVERY = 60.0
Reference = PromptVersionURI | PromptAliasURI


class FallbackPrompt(PromptVersion):
    """The ``fallback=`` template of a cold start, standing in for a version the store could not give.

    Version 0 marks it as not registered; ``uri`` is what the agent asked for.
    """

    version: int = Field(default=0, ge=0, le=0)
    requested: str

    @property
    def uri(self) -> str:
        return self.requested


def prompt_reference(name_or_uri: str, version: int | str | None = None) -> Reference:
    """A ``prompts:/`` URI, or a bare name with an optional version (latest without), as MLflow accepts."""
    if not isinstance(name_or_uri, str):
        raise InvalidArgument(f"a prompt is named by a string, not {type(name_or_uri).__name__}")
    if name_or_uri.startswith("prompts:/"):
        if version is not None:
            raise InvalidArgument("give the version in the URI or as version=, not both")
        return parse_prompt_uri(name_or_uri)
    check_name(name_or_uri, "prompt name")
    if version is None:
        return PromptAliasURI(name_or_uri, "latest")
    return parse_prompt_uri(f"prompts:/{name_or_uri}/{version}")


class PromptLoader:
    def __init__(self, source: ClientSource, ttl: float) -> None:
        self.source = source
        self.cache = PromptCache(ttl)
        self._flights: dict[str, threading.Lock] = {}
        self._flights_lock = threading.Lock()
        self._warned: dict[str, float] = {}

    def load(
        self,
        name_or_uri: str,
        version: int | str | None = None,
        *,
        fallback: Template | None = None,
    ) -> PromptVersion:
        ref = prompt_reference(name_or_uri, version)
        spare = _fallback(ref, fallback) if fallback is not None else None
        try:
            found, source = self._resolve(ref)
        except StoreUnavailable as exc:
            found, source = self._without_store(ref, spare, exc)
        record_loaded(found, str(ref), source)
        return found

    async def aload(
        self,
        name_or_uri: str,
        version: int | str | None = None,
        *,
        fallback: Template | None = None,
    ) -> PromptVersion:
        """``load`` for the event loop: the store is read as an API store call (:mod:`runtime.store_calls`).

        Not the loop's default executor, whose threads Python joins at shutdown (a read waiting on a locked
        or frozen store would hold the server after SIGTERM). A read past its deadline, or refused while too
        many wait, is an outage like any other: the stale version, else the fallback, else the error. The
        load is recorded here, on the loop, where the request's span is current.
        """
        ref = prompt_reference(name_or_uri, version)
        spare = _fallback(ref, fallback) if fallback is not None else None
        try:
            found, source = await store_call(functools.partial(self._resolve, ref), what="prompt registry")
        except StoreUnavailable as exc:
            found, source = self._without_store(ref, spare, exc)
        record_loaded(found, str(ref), source)
        return found

    def is_cached(self, name_or_uri: str, version: int | str | None = None) -> bool:
        """Whether ``load`` would answer from the cache without touching the store."""
        ref = prompt_reference(name_or_uri, version)
        if isinstance(ref, PromptVersionURI):
            return self.cache.version(ref.name, ref.version) is not None
        known, fresh = self.cache.alias(ref.name, ref.alias)
        return known is not None and fresh

    def close(self) -> None:
        self.source.close()

    # -- resolution ----------------------------------------------------------------------------------------

    def _resolve(self, ref: Reference) -> tuple[PromptVersion, Source]:
        if isinstance(ref, PromptVersionURI):
            cached = self.cache.version(ref.name, ref.version)
            if cached is not None:
                return cached, Source.CACHE
            with self._flight(str(ref)):
                cached = self.cache.version(ref.name, ref.version)
                if cached is not None:
                    return cached, Source.CACHE
                found = self.source.get().load_prompt(str(ref))
                self.cache.put_version(found)
                return found, Source.STORE
        known, fresh = self.cache.alias(ref.name, ref.alias)
        if known is not None and fresh:
            return known, Source.CACHE
        with self._flight(str(ref)):  # one store read per alias at a time, however many requests wait
            known, fresh = self.cache.alias(ref.name, ref.alias)
            if known is not None and fresh:
                return known, Source.CACHE
            generation = self.cache.generation()
            found = self.source.get().load_prompt(str(ref))
            self.cache.put_alias(ref.name, ref.alias, found, generation)
            return found, Source.STORE

    def _without_store(
        self, ref: Reference, spare: FallbackPrompt | None, exc: StoreUnavailable
    ) -> tuple[PromptVersion, Source]:
        """What serves while the store cannot answer: the version the alias last named, else the fallback;
        ``exc`` again when neither is there and the outage must show."""
        if isinstance(ref, PromptAliasURI):
            known, _ = self.cache.alias(ref.name, ref.alias)
            if known is not None:
                self._warn(
                    str(ref), "store unavailable, %s keeps serving version %s: %s", ref, known.version, exc
                )
                return known, Source.STALE
        if spare is None:
            raise exc
        self._warn(str(ref), "serving the fallback template of %s: %s", ref, exc.message)
        return spare, Source.FALLBACK

    def _flight(self, key: str) -> threading.Lock:
        with self._flights_lock:
            lock = self._flights.get(key)
            if lock is None:
                lock = self._flights[key] = threading.Lock()
            return lock

    def _warn(self, key: str, message: str, *args: object) -> None:
        """At most one warning per prompt a minute: an outage must not flood the log at request rate."""
        now = time.monotonic()
        if now - self._warned.get(key, -_WARN_EVERY) >= _WARN_EVERY:
            self._warned[key] = now
            log.warning(message, *args)


def _fallback(ref: Reference, template: Template) -> FallbackPrompt:
    """Checked on every call, not only during an outage: a broken fallback must fail where it is written."""
    if not isinstance(template, str | list):
        raise InvalidArgument(
            f"fallback must be a template text or a list of chat messages, not {template!r:.40}"
        )
    messages = template if isinstance(template, str) else [_message(m) for m in template]
    return FallbackPrompt(name=ref.name, template=messages, requested=str(ref))


def _message(message: object) -> ChatMessage:
    if not isinstance(message, Mapping):
        raise InvalidArgument("fallback chat messages must be mappings with 'role' and 'content'")
    try:
        return ChatMessage.model_validate(dict(message))
    except ValueError as exc:
        raise InvalidArgument(f"invalid fallback chat message {dict(message)!r:.80}") from exc
