from __future__ import annotations

import pytest
from pydantic import ValidationError

from registry.entities import PromptVersion
from registry.errors import InvalidArgument
from registry.templates import MissingVariables


def prompt(template: object) -> PromptVersion:
    return PromptVersion.model_validate({"name": "p", "version": 1, "template": template})


def test_whitespace_inside_braces_is_ignored() -> None:
    version = prompt("A {{x}} B {{ x }} C {{\ty\n}}")
    assert version.variables == ["x", "y"]
    assert version.format(x=1, y="two") == "A 1 B 1 C two"


def test_dotted_names_accept_flat_keys_nested_mappings_and_attributes() -> None:
    version = prompt("Hi {{ user.name }} from {{ user.address.city }}")
    assert version.variables == ["user.name", "user.address.city"]

    class Address:
        city = "Paris"

    flat = version.format(**{"user.name": "Ada", "user.address.city": "Paris"})
    nested = version.format(user={"name": "Ada", "address": Address()})
    assert flat == nested == "Hi Ada from Paris"


def test_chat_template_formats_every_message_and_keeps_roles() -> None:
    version = prompt(
        [
            {"role": "system", "content": "You help with {{ product }}."},
            {"role": "user", "content": "{{question}}"},
        ]
    )
    assert version.is_chat
    assert version.variables == ["product", "question"]
    assert version.format(product="routers", question="Why?") == [
        {"role": "system", "content": "You help with routers."},
        {"role": "user", "content": "Why?"},
    ]


def test_missing_variables_are_all_named_in_one_error() -> None:
    version = prompt("{{ a }} {{ b.c }} {{ d }}")
    with pytest.raises(MissingVariables, match=r"missing variables for prompt prompts:/p/1: a, b\.c") as info:
        version.format(d="x")
    assert info.value.missing == ["a", "b.c"]
    assert isinstance(info.value, InvalidArgument)


def test_partial_format_leaves_unfilled_placeholders_for_a_later_pass() -> None:
    version = prompt("{{ a }} and {{  b  }}")
    partial = version.format(allow_partial=True, a="1")
    assert partial == "1 and {{  b  }}"
    assert prompt(partial).format(b=2) == "1 and 2"


def test_wrong_variable_type_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgument, match=r"variable 'a' .* must be a string, number or bool, not list"):
        prompt("{{ a }}").format(a=[1, 2])


@pytest.mark.parametrize("template", ["Hello {{ name", "{{ 1abc }}", "{{ a b }}", "{{}}"])
def test_unbalanced_or_invalid_placeholders_are_rejected_at_registration(template: str) -> None:
    with pytest.raises(InvalidArgument, match="unbalanced or invalid placeholder"):
        prompt(template)


def test_single_braces_and_closing_pairs_are_plain_text() -> None:
    version = prompt('Reply as JSON: {"answer": {"text": "{{ text }}"}}')
    assert version.variables == ["text"]
    assert version.format(text="hi") == 'Reply as JSON: {"answer": {"text": "hi"}}'


def test_response_format_must_look_like_a_json_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    ok = PromptVersion(name="p", version=1, template="x", response_format=schema)
    assert ok.response_format == schema
    for bad in ({"answer": "string"}, {"type": "thing"}):
        with pytest.raises(ValidationError, match="must be a JSON schema"):
            PromptVersion(name="p", version=1, template="x", response_format=bad)


def test_model_config_is_serialized_under_mlflows_name() -> None:
    version = PromptVersion(name="p", version=1, template="x", model_settings={"temperature": 0.1})
    dumped = version.model_dump(by_alias=True)
    assert dumped["model_config"] == {"temperature": 0.1}
    assert dumped["variables"] == []
