"""``models:/`` and ``prompts:/`` URIs, the forms MLflow 3 users already type.

::

    models:/<model_id>          a LoggedModel, registered or not (m-<32 hex>)
    models:/<name>/<version>    a registered version
    models:/<name>@<alias>      whatever version the alias points at now
    models:/<name>/latest       the highest version (also models:/<name>@latest)
    prompts:/<name>/<version>
    prompts:/<name>@<alias>     whatever version the alias points at now
    prompts:/<name>/latest      the highest version (also prompts:/<name>@latest)

Parsing is strict: a malformed URI is an ``InvalidArgument`` naming the accepted forms, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidArgument

__all__ = [
    "LATEST",
    "ModelAliasURI",
    "ModelIdURI",
    "ModelLatestURI",
    "ModelURI",
    "ModelVersionURI",
    "PromptAliasURI",
    "PromptURI",
    "PromptVersionURI",
    "is_model_uri",
    "parse_model_uri",
    "parse_prompt_uri",
]

LATEST = "latest"
_NAME = r"[a-zA-Z0-9_.-]+"
_MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}$")
_VERSION_RE = re.compile(rf"^(?P<name>{_NAME})/(?P<version>[^/@]+)$")
_ALIAS_RE = re.compile(rf"^(?P<name>{_NAME})@(?P<alias>{_NAME})$")
_MODEL_FORMS = "models:/<model_id>, models:/<name>/<version>, models:/<name>@<alias> or models:/<name>/latest"
_PROMPT_FORMS = "prompts:/<name>/<version>, prompts:/<name>@<alias> or prompts:/<name>/latest"


@dataclass(frozen=True)
class ModelIdURI:
    model_id: str

    def __str__(self) -> str:
        return f"models:/{self.model_id}"


@dataclass(frozen=True)
class ModelVersionURI:
    name: str
    version: int

    def __str__(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class ModelAliasURI:
    name: str
    alias: str

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}"


@dataclass(frozen=True)
class ModelLatestURI:
    name: str

    def __str__(self) -> str:
        return f"models:/{self.name}/{LATEST}"


ModelURI = ModelIdURI | ModelVersionURI | ModelAliasURI | ModelLatestURI


@dataclass(frozen=True)
class PromptVersionURI:
    name: str
    version: int

    def __str__(self) -> str:
        return f"prompts:/{self.name}/{self.version}"


@dataclass(frozen=True)
class PromptAliasURI:
    """``alias == "latest"`` means the highest version, as in MLflow."""

    name: str
    alias: str

    def __str__(self) -> str:
        return f"prompts:/{self.name}@{self.alias}"


PromptURI = PromptVersionURI | PromptAliasURI


def _version(text: str, uri: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgument(f"invalid version {text!r} in {uri!r}: versions are positive integers")
    return int(text)


def is_model_uri(value: str) -> bool:
    return value.startswith("models:/")


def parse_model_uri(uri: str) -> ModelURI:
    if not uri.startswith("models:/"):
        raise InvalidArgument(f"not a model URI: {uri!r} (expected {_MODEL_FORMS})")
    rest = uri[len("models:/") :]
    if _MODEL_ID_RE.match(rest):
        return ModelIdURI(rest)
    if match := _ALIAS_RE.match(rest):
        if match["alias"] == LATEST:
            return ModelLatestURI(match["name"])
        return ModelAliasURI(match["name"], match["alias"])
    if match := _VERSION_RE.match(rest):
        if match["version"] == LATEST:
            return ModelLatestURI(match["name"])
        return ModelVersionURI(match["name"], _version(match["version"], uri))
    raise InvalidArgument(f"malformed model URI {uri!r} (expected {_MODEL_FORMS})")


def parse_prompt_uri(uri: str) -> PromptURI:
    if not uri.startswith("prompts:/"):
        raise InvalidArgument(f"not a prompt URI: {uri!r} (expected {_PROMPT_FORMS})")
    rest = uri[len("prompts:/") :]
    if match := _ALIAS_RE.match(rest):
        return PromptAliasURI(match["name"], match["alias"])
    if match := _VERSION_RE.match(rest):
        if match["version"] == LATEST:
            return PromptAliasURI(match["name"], LATEST)
        return PromptVersionURI(match["name"], _version(match["version"], uri))
    raise InvalidArgument(f"malformed prompt URI {uri!r} (expected {_PROMPT_FORMS})")
