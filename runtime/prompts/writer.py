"""Prompt registry writes made through the runtime, each announced so every replica's cache follows.

The CLI and the admin API write through :class:`PromptWriter` rather than the bare ``RegistryClient``: after
the store has committed, the change is dropped from this process's cache and published on Redis for the
others. A write made with a plain ``RegistryClient`` elsewhere is still picked up, within the cache TTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from registry.client import RegistryClient
from registry.entities import PromptVersion
from registry.templates import Template
from registry.uris import LATEST
from runtime.prompts.cache import PromptCache
from runtime.prompts.notify import AliasPublisher

__all__ = ["PromptWriter"]


class PromptWriter:
    def __init__(
        self,
        client: RegistryClient,
        publisher: AliasPublisher | None = None,
        cache: PromptCache | None = None,
    ) -> None:
        self.client = client
        self.publisher = publisher
        self.cache = cache

    def register(
        self,
        name: str,
        template: Template,
        *,
        commit_message: str | None = None,
        tags: Mapping[str, str] | None = None,
        response_format: Mapping[str, Any] | type[BaseModel] | None = None,
        model_config: Mapping[str, Any] | None = None,
    ) -> PromptVersion:
        """A new version moves ``@latest``."""
        version = self.client.register_prompt(
            name,
            template,
            commit_message=commit_message,
            tags=tags,
            response_format=response_format,
            model_config=model_config,
        )
        self._announce(name, alias=LATEST)
        return version

    def set_alias(self, name: str, alias: str, version: int | str) -> PromptVersion:
        found = self.client.set_prompt_alias(name, alias, version)
        self._announce(name, alias=alias)
        return found

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.delete_prompt_alias(name, alias)
        self._announce(name, alias=alias)

    def set_tag(self, name: str, version: int | str, key: str, value: str | None) -> PromptVersion:
        found = self.client.set_prompt_version_tag(name, version, key, value)
        self._announce(name, version=found.version)
        return found

    def edit_message(self, name: str, version: int | str, message: str | None) -> PromptVersion:
        found = self.client.update_prompt_commit_message(name, version, message)
        self._announce(name, version=found.version)
        return found

    def _announce(self, name: str, *, alias: str | None = None, version: int | None = None) -> None:
        if self.cache is not None:
            self.cache.forget(name, alias, version)
        if self.publisher is not None:
            self.publisher.publish(name, alias, version)
