"""Prompt versions, aliases, formatting and bad input, on a real SQLite and a real PostgreSQL store."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from registry import InvalidArgument, NotFound, RegistryClient
from registry.entities import PromptVersion
from registry.templates import MissingVariables

CHAT = [
    {"role": "system", "content": "You answer for {{ company.name }} in a {{tone}} tone."},
    {"role": "user", "content": "{{ question }}"},
]


def test_versions_count_up_and_stay_as_registered(client: RegistryClient) -> None:
    class Answer(BaseModel):
        text: str

    v1 = client.register_prompt("support", "Answer {{ question }}", commit_message="first", tags={"t": "1"})
    v2 = client.register_prompt("support", CHAT, response_format=Answer, model_config={"temperature": 0.2})
    v3 = client.register_prompt("support", "Answer {{question}} briefly")
    assert [v.version for v in (v1, v2, v3)] == [1, 2, 3]
    assert client.load_prompt("prompts:/support/1") == v1
    assert client.load_prompt("support", version=2).is_chat
    assert client.load_prompt("support").version == 3  # a bare name is the latest version
    stored = client.load_prompt("prompts:/support/2")
    assert stored.variables == ["company.name", "tone", "question"]
    assert stored.model_settings == {"temperature": 0.2}
    assert stored.response_format is not None and stored.response_format["required"] == ["text"]
    assert stored.model_dump(by_alias=True)["model_config"] == {"temperature": 0.2}

    edited = client.update_prompt_commit_message("support", 1, "first, reworded")
    tagged = client.set_prompt_version_tag("support", 1, "reviewed", "yes")
    assert (edited.commit_message, tagged.tags) == ("first, reworded", {"t": "1", "reviewed": "yes"})
    assert client.load_prompt("prompts:/support/1").template == "Answer {{ question }}"
    assert [v.version for v in client.list_prompt_versions("support")] == [3, 2, 1]


def test_aliases_move_resolve_and_delete(client: RegistryClient) -> None:
    for text in ("one {{ x }}", "two {{ x }}"):
        client.register_prompt("support", text)
    client.set_prompt_alias("support", "production", 1)
    assert client.load_prompt("prompts:/support@production").version == 1
    client.set_prompt_alias("support", "production", 2)
    moved = client.load_prompt("prompts:/support@production")
    assert (moved.version, moved.aliases) == (2, ["production"])
    assert client.load_prompt("prompts:/support@latest").version == 2
    assert client.load_prompt("prompts:/support/latest").version == 2
    assert client.get_prompt("support").aliases == {"production": 2}
    assert [p.name for p in client.search_prompts("alias = 'production'")] == ["support"]

    client.delete_prompt_alias("support", "production")
    with pytest.raises(NotFound, match="alias 'production' of prompt 'support' not found"):
        client.load_prompt("prompts:/support@production")
    with pytest.raises(NotFound, match="alias 'production' of prompt 'support' not found"):
        client.delete_prompt_alias("support", "production")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.load_prompt("prompts:/ghost/1"), "version 1 of prompt 'ghost' not found"),
        (lambda c: c.load_prompt("prompts:/ghost@production"), "alias 'production' of prompt 'ghost'"),
        (lambda c: c.load_prompt("ghost"), "prompt 'ghost' not found"),
        (lambda c: c.load_prompt("prompts:/support/7"), "version 7 of prompt 'support' not found"),
        (lambda c: c.load_prompt("prompts:/support@staging"), "alias 'staging' of prompt 'support'"),
        (lambda c: c.set_prompt_alias("support", "production", 7), "version 7 of prompt 'support'"),
        (lambda c: c.set_prompt_alias("ghost", "production", 1), "version 1 of prompt 'ghost'"),
        (lambda c: c.update_prompt_commit_message("support", 7, "x"), "version 7 of prompt 'support'"),
        (lambda c: c.set_prompt_version_tag("ghost", 1, "k", "v"), "version 1 of prompt 'ghost'"),
    ],
)
def test_unknown_prompts_versions_and_aliases_are_not_found_and_change_nothing(
    client: RegistryClient, call: Any, message: str
) -> None:
    client.register_prompt("support", "one")
    client.set_prompt_alias("support", "production", 1)
    with pytest.raises(NotFound, match=message):
        call(client)
    assert [(p.name, p.aliases, p.latest_version) for p in client.search_prompts()] == [
        ("support", {"production": 1}, 1)
    ]
    assert client.load_prompt("prompts:/support/1").commit_message is None


NOT_A_SCHEMA = [
    ({"answer": "string"}, "must be a JSON schema"),
    ({"type": "thing"}, r"'thing' is not a JSON schema type"),
    ({"type": "object", "properties": ["answer"]}, r"response_format\.properties: must map names"),
    ({"type": "object", "properties": {"a": {"type": "string", "minLength": -1}}}, r"a\.minLength"),
    ({"type": "object", "required": "answer"}, r"required: must be a list of property names"),
    ({"anyOf": []}, r"anyOf: must be a non-empty list"),
    ({"type": "array", "items": "string"}, r"items: a subschema must be an object"),
    ({"type": "object", "default": float("nan")}, "only JSON values"),
    ("json_object", "must be a JSON schema .* or a pydantic model class"),
]


@pytest.mark.parametrize(
    ("name", "template", "extra", "message"),
    [
        ("bad name", "x", {}, "invalid prompt name 'bad name'"),
        ("a/b", "x", {}, "invalid prompt name"),
        ("", "x", {}, "invalid prompt name"),
        ("p" * 257, "x", {}, "invalid prompt name"),
        ("p", "Hello {{ name", {}, r"unbalanced or invalid placeholder in template near '\{\{ name'"),
        ("p", "{{ 1st }}", {}, "unbalanced or invalid placeholder"),
        ("p", "{{ a b }}", {}, "unbalanced or invalid placeholder"),
        ("p", [{"role": "user", "content": "fine"}, {"role": "user", "content": "{{ x"}], {}, "unbalanced"),
        ("p", "", {}, "template is empty"),
        ("p", [], {}, "template is empty"),
        ("p", [{"content": "no role"}], {}, "role"),
        ("p", 42, {}, "template"),
        ("p", "x", {"model_config": {"client": object()}}, "model_config must hold only JSON values"),
        ("p", "x", {"model_config": ["temperature"]}, "model_config must be a mapping"),
        ("p", "x", {"tags": {"": "v"}}, "tag keys must be non-empty"),
        *[("p", "x", {"response_format": schema}, message) for schema, message in NOT_A_SCHEMA],
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    client: RegistryClient, name: str, template: Any, extra: dict[str, Any], message: str
) -> None:
    client.register_prompt("existing", "kept")
    with pytest.raises(InvalidArgument, match=message):
        client.register_prompt(name, template, **extra)
    if name == "p":  # a bad next version of an existing prompt is refused the same way
        with pytest.raises(InvalidArgument, match=message):
            client.register_prompt("existing", template, **extra)
    assert [(p.name, p.latest_version) for p in client.search_prompts()] == [("existing", 1)]
    assert client.register_prompt("existing", "next").version == 2  # no version number was used up


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.set_prompt_alias("support", "latest", 1), "reserved"),
        (lambda c: c.set_prompt_alias("support", "3", 1), "reserved"),
        (lambda c: c.set_prompt_alias("support", "bad alias", 1), "invalid alias"),
        (lambda c: c.set_prompt_alias("support", "production", "one"), "invalid version 'one'"),
        (lambda c: c.set_prompt_version_tag("support", 1, "", "v"), "tag keys must be non-empty"),
        (lambda c: c.load_prompt("bad name"), "invalid prompt name"),
        (lambda c: c.load_prompt("prompts:/support"), "malformed prompt URI"),
        (lambda c: c.load_prompt("prompts:/support/0"), "versions are positive integers"),
        (lambda c: c.search_prompts("owner = 'me'"), "cannot parse filter clause"),
    ],
)
def test_bad_alias_tag_and_lookup_arguments_are_usage_errors(
    client: RegistryClient, call: Any, message: str
) -> None:
    client.register_prompt("support", "one")
    with pytest.raises(InvalidArgument, match=message):
        call(client)
    assert client.get_prompt("support").aliases == {}
    assert client.load_prompt("prompts:/support/1").tags == {}


def _stored(client: RegistryClient, template: Any) -> PromptVersion:
    """Formatting is tested on versions read back from the store, as agents get them."""
    return client.load_prompt(client.register_prompt("fmt", template).uri)


def test_whitespace_inside_braces_does_not_matter(client: RegistryClient) -> None:
    version = _stored(client, "{{name}} | {{ name }} | {{\tname  }} | {{\n name\n}}")
    assert version.variables == ["name"]
    assert version.format(name="Ada") == "Ada | Ada | Ada | Ada"


def test_dotted_names_take_flat_keys_mappings_or_attributes(client: RegistryClient) -> None:
    class User:
        name = "Grace"

    version = _stored(client, "Hi {{ user.name }} from {{ org.address.city }}")
    city = {"address": {"city": "Paris"}}
    assert version.format(**{"user.name": "Ada", "org.address.city": "Oslo"}) == "Hi Ada from Oslo"
    assert version.format(user={"name": "Ada"}, org=city) == "Hi Ada from Paris"
    assert version.format(user=User(), org=city) == "Hi Grace from Paris"
    with pytest.raises(
        MissingVariables, match=r"missing variables for prompt prompts:/fmt/1: org\.address\.city"
    ):
        version.format(user=User(), org={"address": {}})


def test_chat_templates_fill_every_message_and_keep_roles(client: RegistryClient) -> None:
    version = _stored(client, CHAT)
    filled = version.format(company={"name": "Acme"}, tone="warm", question="Where is my order?")
    assert filled == [
        {"role": "system", "content": "You answer for Acme in a warm tone."},
        {"role": "user", "content": "Where is my order?"},
    ]
    assert version.template[0].role == "system"  # type: ignore[index,union-attr]  # a chat template


def test_missing_variables_are_named_together_unless_partial(client: RegistryClient) -> None:
    version = _stored(client, CHAT)
    with pytest.raises(MissingVariables, match=r"company\.name, tone, question") as caught:
        version.format()
    assert caught.value.missing == ["company.name", "tone", "question"]
    partial = version.format(allow_partial=True, tone="dry")
    assert partial[0]["content"] == "You answer for {{ company.name }} in a dry tone."  # type: ignore[index]
    assert partial[1]["content"] == "{{ question }}"  # type: ignore[index]


def test_numbers_and_booleans_fill_but_other_types_are_rejected(client: RegistryClient) -> None:
    version = _stored(client, "{{ n }} items, gift: {{ gift }}, cost {{ cost }}")
    assert version.format(n=3, gift=True, cost=9.5) == "3 items, gift: True, cost 9.5"
    for wrong in ([1, 2], {"a": 1}, b"bytes", object()):
        with pytest.raises(InvalidArgument, match=r"variable 'n' .* must be a string, number or bool"):
            version.format(n=wrong, gift=True, cost=1)
    with pytest.raises(MissingVariables, match=r"missing variables .*: n"):
        version.format(n=None, gift=True, cost=1)  # None is no value


def test_single_braces_are_text_and_repeated_variables_fill_everywhere(client: RegistryClient) -> None:
    version = _stored(client, 'JSON: {"a": "{{ x }}"} and again {{x}}; {not a var}')
    assert version.variables == ["x"]
    assert version.format(x="1") == 'JSON: {"a": "1"} and again 1; {not a var}'
