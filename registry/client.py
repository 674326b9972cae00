"""``RegistryClient``: the one Python API over the store and the artifact root.

The CLI, the server and agent authors all go through it. It reads ``RUNTIME_STORE_URL`` and
``RUNTIME_ARTIFACT_ROOT`` only in its constructor, and only for arguments not given. The registry must not
import the runtime, so ``log_model`` takes the runtime's loader check as a ``validate`` callback.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ValidationError

from registry.artifacts import ArtifactRepository, LocalArtifactRepository
from registry.entities import (
    LineageEdge,
    LineageKind,
    LoggedModel,
    ModelStatus,
    ModelVersion,
    Prompt,
    PromptVersion,
    RegisteredModel,
    check_name,
    new_model_id,
)
from registry.errors import InvalidArgument
from registry.filters import parse_prompt_filter
from registry.model_files import ModelFiles, git_source
from registry.passthrough import StorePassthrough
from registry.store import SqlStore
from registry.templates import Template
from registry.uris import (
    ModelAliasURI,
    ModelIdURI,
    ModelLatestURI,
    ModelVersionURI,
    PromptAliasURI,
    PromptVersionURI,
    parse_model_uri,
    parse_prompt_uri,
)

__all__ = [
    "ARTIFACT_ROOT_ENV",
    "DEFAULT_ARTIFACT_ROOT",
    "DEFAULT_STORE_URL",
    "STORE_URL_ENV",
    "RegistryClient",
    "ResolvedModel",
]

log = logging.getLogger(__name__)

STORE_URL_ENV = "RUNTIME_STORE_URL"
ARTIFACT_ROOT_ENV = "RUNTIME_ARTIFACT_ROOT"
DEFAULT_STORE_URL = "sqlite:///./.runtime/runtime.db"
DEFAULT_ARTIFACT_ROOT = "./.runtime/artifacts"
MODELS_DIR = "models"

Validator = Callable[[Path], object]


@dataclass(frozen=True)
class ResolvedModel:
    """What a URI points at right now: the model, the version when it came through one, and its files."""

    model: LoggedModel
    version: ModelVersion | None
    local_path: Path


def _str_map(values: Mapping[str, object] | None, what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in (values or {}).items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"{what} keys must be non-empty strings, got {key!r}")
        result[key] = str(value)
    return result


class RegistryClient(StorePassthrough):
    def __init__(
        self,
        store_url: str | None = None,
        artifact_root: Path | str | None = None,
        *,
        artifacts: ArtifactRepository | None = None,
    ) -> None:
        self.store_url = store_url or os.environ.get(STORE_URL_ENV) or DEFAULT_STORE_URL
        if artifacts is None:
            root = artifact_root or os.environ.get(ARTIFACT_ROOT_ENV) or DEFAULT_ARTIFACT_ROOT
            artifacts = LocalArtifactRepository(Path(root))
        self.artifacts = artifacts
        self.store = SqlStore(self.store_url)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- logged models -------------------------------------------------------------------------------------

    def log_model(
        self,
        code_path: Path | str,
        name: str,
        *,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        requirements: Path | str | Sequence[str] | None = None,
        code_paths: Sequence[Path | str] = (),
        config: Path | str | None = None,
        input_example: Any = None,
        prompts: Sequence[str] = (),
        validate: Validator | None = None,
    ) -> LoggedModel:
        """Copy the agent into the artifact root and record it; READY only once ``validate`` accepted it.

        Every argument is checked before anything is written. The record is created PENDING before files are
        copied, so a crash midway leaves a PENDING model rather than a READY one without files; a failing copy
        or validation marks it FAILED (with the reason) and re-raises the original error.
        """
        check_name(name, "model name")
        files = ModelFiles.check(
            code_path,
            code_paths=code_paths,
            config=config,
            requirements=requirements,
            input_example=input_example,
        )
        prompt_uris = [self.load_prompt(uri).uri for uri in prompts]
        model_id = new_model_id()
        location = f"{MODELS_DIR}/{model_id}"
        model = self.store.create_logged_model(
            LoggedModel(
                model_id=model_id,
                name=name,
                params=_str_map(params, "param"),
                tags=_str_map(tags, "tag"),
                source=git_source(files.code),
                artifact_location=location,
                prompts=prompt_uris,
            )
        )
        try:
            with tempfile.TemporaryDirectory(prefix="runtime-model-") as staging:
                files.stage(
                    Path(staging) / model_id, {"model_id": model_id, "name": name, "prompts": prompt_uris}
                )
                self.artifacts.put(Path(staging) / model_id, location)
            if validate is not None:
                validate(self.artifacts.local_path(location))
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:1000]
            self.store.finish_logged_model(model_id, ModelStatus.FAILED, reason)
            raise
        self.store.add_lineage(
            [
                LineageEdge(
                    src_kind=LineageKind.PROMPT_VERSION,
                    src_id=uri,
                    dst_kind=LineageKind.MODEL,
                    dst_id=model_id,
                )
                for uri in prompt_uris
            ]
        )
        log.info("logged model %s as %s", name, model.model_id)
        return self.store.finish_logged_model(model_id, ModelStatus.READY)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return self.store.get_logged_model(model_id)

    def search_logged_models(
        self,
        name: str | None = None,
        status: ModelStatus | str | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
    ) -> list[LoggedModel]:
        return self.store.search_logged_models(name=name, status=status, tags=tags, limit=limit)

    # -- registered models ---------------------------------------------------------------------------------

    def register_model(
        self, model_uri: str, name: str, tags: Mapping[str, str] | None = None
    ) -> ModelVersion:
        """Register whatever ``model_uri`` resolves to as the next version of ``name``."""
        model = self._model_for(parse_model_uri(model_uri))[0]
        return self.store.create_model_version(name, model.model_id, tags=_str_map(tags, "tag"))

    def create_registered_model(
        self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        return self.store.create_registered_model(name, description, _str_map(tags, "tag"))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(name)

    def list_registered_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        return self.store.list_registered_models(name_like)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(name, _version(version))

    def search_model_versions(
        self, name: str | None = None, model_id: str | None = None
    ) -> list[ModelVersion]:
        return self.store.search_model_versions(name, model_id)

    def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersion:
        return self.store.set_model_alias(name, alias, _version(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self.store.delete_model_alias(name, alias)

    def resolve(self, uri: str) -> ResolvedModel:
        """Resolve any ``models:/`` form to the model and its files; aliases are read afresh each call."""
        model, version = self._model_for(parse_model_uri(uri))
        return ResolvedModel(model, version, self.artifacts.local_path(model.artifact_location))

    def _model_for(
        self, parsed: ModelIdURI | ModelVersionURI | ModelAliasURI | ModelLatestURI
    ) -> tuple[LoggedModel, ModelVersion | None]:
        match parsed:
            case ModelIdURI(model_id):
                return self.store.get_logged_model(model_id), None
            case ModelVersionURI(name, number):
                version = self.store.get_model_version(name, number)
            case ModelAliasURI(name, alias):
                version = self.store.get_model_version_by_alias(name, alias)
            case ModelLatestURI(name):
                version = self.store.get_latest_model_version(name)
        return self.store.get_logged_model(version.model_id), version

    # -- prompts -------------------------------------------------------------------------------------------

    def register_prompt(
        self,
        name: str,
        template: Template,
        *,
        commit_message: str | None = None,
        tags: Mapping[str, str] | None = None,
        response_format: Mapping[str, Any] | type[BaseModel] | None = None,
        model_config: Mapping[str, Any] | None = None,
        first_only: bool = False,
    ) -> PromptVersion:
        """Register the next immutable version; ``response_format`` may be a pydantic model class.

        Name, template, schema and JSON values are all checked before the write: bad input changes nothing.
        ``tags`` go on the version and, as in MLflow, on the prompt too (see :meth:`set_prompt_tag`).
        ``first_only``: only if the prompt has no version yet, else :class:`Conflict`.
        """
        schema = _response_schema(response_format)
        if model_config is not None and not isinstance(model_config, Mapping):
            raise InvalidArgument(f"model_config must be a mapping, not {type(model_config).__name__}")
        try:
            return self.store.create_prompt_version(
                name,
                template,
                commit_message=commit_message,
                tags=_str_map(tags, "tag"),
                response_format=schema,
                model_settings=model_config,
                first_only=first_only,
            )
        except ValidationError as exc:
            raise InvalidArgument(_first_error(exc)) from exc

    def load_prompt(self, name_or_uri: str, version: int | str | None = None) -> PromptVersion:
        """Accept a ``prompts:/`` URI or a bare name (latest version unless ``version`` is given)."""
        if not name_or_uri.startswith("prompts:/"):
            check_name(name_or_uri, "prompt name")
            if version is not None:
                return self.store.get_prompt_version(name_or_uri, _version(version))
            return self.store.get_prompt_version_by_alias(name_or_uri, "latest")
        match parse_prompt_uri(name_or_uri):
            case PromptVersionURI(name, number):
                return self.store.get_prompt_version(name, number)
            case PromptAliasURI(name, alias):
                return self.store.get_prompt_version_by_alias(name, alias)
        raise InvalidArgument(f"unsupported prompt URI {name_or_uri!r}")  # pragma: no cover

    def get_prompt(self, name: str) -> Prompt:
        return self.store.get_prompt(name)

    def list_prompt_versions(self, name: str) -> list[PromptVersion]:
        """Newest first."""
        return self.store.list_prompt_versions(name)

    def set_prompt_alias(self, name: str, alias: str, version: int | str) -> PromptVersion:
        return self.store.set_prompt_alias(name, alias, _version(version))

    def delete_prompt_alias(self, name: str, alias: str) -> None:
        self.store.delete_prompt_alias(name, alias)

    def search_prompts(
        self,
        filter_string: str | None = None,
        *,
        name_like: str | None = None,
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
        limit: int = 1000,
    ) -> list[Prompt]:
        parsed = parse_prompt_filter(filter_string)
        return self.store.search_prompts(
            name=parsed.name,
            name_like=name_like if name_like is not None else parsed.name_like,
            case_sensitive=parsed.case_sensitive,
            tags={**parsed.tags, **(tags or {})},
            alias=alias if alias is not None else parsed.alias,
            limit=limit,
        )

    def set_prompt_tag(self, name: str, key: str, value: str) -> Prompt:
        """Set a tag of the prompt itself, the tags ``search_prompts("tags.<key> = '...'")`` filters."""
        return self.store.set_prompt_tag(name, _tag_key(key), str(value))

    def delete_prompt_tag(self, name: str, key: str) -> Prompt:
        """Delete a tag of the prompt itself; deleting a tag it does not have changes nothing."""
        return self.store.set_prompt_tag(name, _tag_key(key), None)

    def set_prompt_version_tag(
        self, name: str, version: int | str, key: str, value: str | None
    ) -> PromptVersion:
        """Set a tag, or delete it when ``value`` is None; the template itself can never be edited."""
        return self.store.set_prompt_version_tag(
            name, _version(version), _tag_key(key), None if value is None else str(value)
        )

    def update_prompt_commit_message(
        self, name: str, version: int | str, message: str | None
    ) -> PromptVersion:
        return self.store.update_prompt_commit_message(name, _version(version), message)


def _response_schema(value: object) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    if isinstance(value, type) and issubclass(value, BaseModel):
        return value.model_json_schema()
    raise InvalidArgument(
        "response_format must be a JSON schema (a mapping) or a pydantic model class, "
        f"not {type(value).__name__}"
    )


def _tag_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidArgument(f"tag keys must be non-empty strings, got {key!r}")
    return key


def _version(value: int | str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"invalid version {value!r}: versions are positive integers") from exc
    if number < 1:
        raise InvalidArgument(f"invalid version {value!r}: versions are positive integers")
    return number


def _first_error(exc: ValidationError) -> str:
    """The most specific error: for a union (text or chat template), the branch the input meant."""
    error = max(exc.errors(), key=lambda e: len(e["loc"]))
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
