"""``load_prompt``: the process cache (versions forever, aliases for a TTL), invalidation, bad arguments."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from registry import InvalidArgument, NotFound, RegistryClient
from registry.entities import PromptVersion
from runtime.prompts import FallbackPrompt, aload_prompt, configure, current_loader, load_prompt
from runtime.prompts.cache import PromptCache
from runtime.prompts.writer import PromptWriter
from tests.servers import wait_until


class CountingClient(RegistryClient):
    """A real client that counts the store reads ``load_prompt`` makes."""

    reads = 0

    def load_prompt(self, name_or_uri: str, version: int | str | None = None) -> PromptVersion:
        self.reads += 1
        return super().load_prompt(name_or_uri, version)


@pytest.fixture
def counting(tmp_path: Path) -> Any:
    with CountingClient(f"sqlite:///{tmp_path / 'prompts.db'}", tmp_path / "artifacts") as client:
        for text in ("one {{ x }}", "two {{ x }}", "three {{ x }}"):
            client.register_prompt("support", text)
        client.set_prompt_alias("support", "production", 1)
        client.reads = 0
        yield client


def test_versions_are_read_once_and_kept(counting: CountingClient) -> None:
    configure(counting, ttl=0)
    first = load_prompt("prompts:/support/2")
    assert [load_prompt("prompts:/support/2") for _ in range(5)] == [first] * 5
    assert load_prompt("support", version=2) is first
    assert counting.reads == 1
    assert first.format(x="a") == "two a"


def test_an_alias_is_trusted_for_the_ttl_then_read_again(counting: CountingClient) -> None:
    configure(counting, ttl=0.3)
    assert load_prompt("prompts:/support@production").version == 1
    assert load_prompt("prompts:/support@production").version == 1
    assert counting.reads == 1
    counting.set_prompt_alias("support", "production", 2)  # a plain client: nobody announces the move
    assert load_prompt("prompts:/support@production").version == 1  # still within the TTL
    assert wait_until(lambda: load_prompt("prompts:/support@production").version == 2, timeout=5)


def test_moves_made_through_the_runtime_apply_at_once(counting: CountingClient) -> None:
    loader = configure(counting, ttl=600)
    writer = PromptWriter(counting, publisher=None, cache=loader.cache)
    assert load_prompt("prompts:/support@production").version == 1
    assert load_prompt("support").version == 3  # a bare name is @latest
    writer.set_alias("support", "production", 3)
    assert load_prompt("prompts:/support@production").version == 3
    writer.register("support", "four {{ x }}")
    assert load_prompt("support").version == 4
    writer.delete_alias("support", "production")
    with pytest.raises(NotFound, match="alias 'production' of prompt 'support' not found"):
        load_prompt("prompts:/support@production")


def test_edited_tags_and_messages_are_read_again_after_an_announced_edit(counting: CountingClient) -> None:
    loader = configure(counting, ttl=600)
    writer = PromptWriter(counting, publisher=None, cache=loader.cache)
    assert load_prompt("prompts:/support/1").commit_message is None
    writer.edit_message("support", 1, "reviewed")
    writer.set_tag("support", 1, "owner", "cx")
    reread = load_prompt("prompts:/support/1")
    assert (reread.commit_message, reread.tags, reread.template) == (
        "reviewed",
        {"owner": "cx"},
        "one {{ x }}",
    )


def test_an_answer_fetched_across_an_invalidation_is_not_trusted() -> None:
    """A read that started before a move may return the old target: keep it, but only as stale."""
    cache = PromptCache(ttl=600)
    old = PromptVersion(name="p", version=1, template="old")
    before = cache.generation()
    cache.forget("p", "production")  # the move is announced while the read is in flight
    cache.put_alias("p", "production", old, before)
    assert cache.alias("p", "production") == (old, False)
    cache.put_alias("p", "production", old, cache.generation())
    assert cache.alias("p", "production") == (old, True)
    cache.forget(None)  # a resubscribed replica forgets every alias
    assert cache.alias("p", "production") == (old, False)


def test_many_threads_on_a_cold_alias_make_one_store_read(counting: CountingClient) -> None:
    configure(counting, ttl=600)

    async def burst() -> list[PromptVersion]:
        return await asyncio.gather(*(aload_prompt("prompts:/support@production") for _ in range(20)))

    found = asyncio.run(burst())
    assert {v.version for v in found} == {1}
    assert counting.reads == 1


def test_not_found_is_never_hidden_by_a_fallback(counting: CountingClient) -> None:
    configure(counting, ttl=600)
    with pytest.raises(NotFound, match="prompt 'ghost' not found"):
        load_prompt("prompts:/ghost@latest", fallback="Hello")
    with pytest.raises(NotFound, match="version 9 of prompt 'support' not found"):
        load_prompt("prompts:/support/9", fallback="Hello")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("bad name",), {}, "invalid prompt name 'bad name'"),
        (("prompts:/support",), {}, "malformed prompt URI"),
        (("prompts:/support/1",), {"version": 2}, "give the version in the URI or as version=, not both"),
        (("support",), {"version": "x"}, "invalid version 'x'"),
        ((42,), {}, "a prompt is named by a string"),
        (("prompts:/support/1",), {"fallback": "Hi {{ name"}, "unbalanced or invalid placeholder"),
        (("prompts:/support/1",), {"fallback": [{"content": "no role"}]}, "invalid fallback chat message"),
        (("prompts:/support/1",), {"fallback": {"role": "user"}}, "fallback must be a template text"),
    ],
)
def test_bad_arguments_are_usage_errors_even_when_the_store_is_fine(
    counting: CountingClient, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    configure(counting, ttl=600)
    with pytest.raises(InvalidArgument, match=message):
        load_prompt(*args, **kwargs)
    assert counting.reads == 0


def test_without_a_server_the_environments_store_is_used(
    sqlite_client: RegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_client.register_prompt("env-prompt", "from the environment")
    monkeypatch.setenv("RUNTIME_STORE_URL", sqlite_client.store_url)
    monkeypatch.setenv("RUNTIME_PROMPT_CACHE_TTL", "12.5")
    assert load_prompt("prompts:/env-prompt@latest").template == "from the environment"
    assert current_loader().cache.ttl == 12.5


def test_fallback_prompt_formats_like_a_version() -> None:
    spare = FallbackPrompt(
        name="p", template=[{"role": "user", "content": "{{ q }}"}], requested="prompts:/p@a"
    )
    assert (spare.version, spare.uri, spare.variables) == (0, "prompts:/p@a", ["q"])
    assert spare.format(q="hi") == [{"role": "user", "content": "hi"}]
