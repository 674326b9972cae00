from __future__ import annotations

import pytest

from registry.errors import InvalidArgument
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

MODEL_ID = "m-" + "0123456789abcdef" * 2


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        (f"models:/{MODEL_ID}", ModelIdURI(MODEL_ID)),
        ("models:/support-bot/3", ModelVersionURI("support-bot", 3)),
        ("models:/support.bot_v2@champion", ModelAliasURI("support.bot_v2", "champion")),
        ("models:/support-bot/latest", ModelLatestURI("support-bot")),
        ("models:/support-bot@latest", ModelLatestURI("support-bot")),
    ],
)
def test_every_model_uri_form_parses_and_formats_back(uri: str, parsed: object) -> None:
    assert parse_model_uri(uri) == parsed
    canonical = uri.replace("@latest", "/latest")
    assert str(parsed) == canonical


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("prompts:/support/3", PromptVersionURI("support", 3)),
        ("prompts:/support@production", PromptAliasURI("support", "production")),
        ("prompts:/support@latest", PromptAliasURI("support", "latest")),
        ("prompts:/support/latest", PromptAliasURI("support", "latest")),
    ],
)
def test_every_prompt_uri_form_parses(uri: str, parsed: object) -> None:
    assert parse_prompt_uri(uri) == parsed


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("runs:/abc/model", "not a model URI"),
        ("models:/", "malformed model URI"),
        ("models:/support-bot", "malformed model URI"),
        ("models:/support bot/1", "malformed model URI"),
        ("models:/support-bot/0", "invalid version '0'"),
        ("models:/support-bot/-1", "invalid version"),
        ("models:/support-bot/v1", "invalid version 'v1'"),
        ("models:/support-bot/1/extra", "malformed model URI"),
        ("models:/support-bot@", "malformed model URI"),
        ("models:/a@b@c", "malformed model URI"),
        ("models:/m-123", "malformed model URI"),
    ],
)
def test_malformed_model_uris_are_rejected_with_the_accepted_forms(uri: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_model_uri(uri)


@pytest.mark.parametrize(
    "uri",
    ["models:/x/1", "prompts:/", "prompts:/name", "prompts:/name/zero", "prompts:/a/b/c", "prompts:/a@"],
)
def test_malformed_prompt_uris_are_rejected(uri: str) -> None:
    with pytest.raises(InvalidArgument, match=r"prompt URI|invalid version"):
        parse_prompt_uri(uri)


def test_uri_errors_are_usage_errors() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_model_uri("nope")
    assert (info.value.status, info.value.exit_code, info.value.code) == (400, 2, "invalid_argument")
