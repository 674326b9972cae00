"""Traces by prompt (``GET /api/traces?prompt=``, ``runtime traces list --prompt``, the store's filter).

Traces record the prompt versions they loaded. An alias or ``latest`` names the version it points at now;
anything but a prompt URI is refused with the accepted forms, never answered with an empty list. On SQLite
and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from registry import InvalidArgument, NotFound, RegistryClient
from registry.entities import TraceRecord
from runtime.app import create_app
from runtime.cli.main import main
from tests.observability.conftest import settings_for
from tests.serving.agents import AsyncEcho, loaded

FORMS = "prompts:/<name>/<version>, prompts:/<name>@<alias> or prompts:/<name>/latest"


@pytest.fixture
def traffic(client: RegistryClient) -> dict[int, str]:
    """greet/1 (alias production) and greet/2 (latest), one trace each; a trace with no prompt."""
    client.register_prompt("greet", "Hi {{ x }}")
    client.register_prompt("greet", "Hello {{ x }}")
    client.set_prompt_alias("greet", "production", 1)
    ids = {1: "tr-" + "1" * 32, 2: "tr-" + "2" * 32}
    client.log_traces(
        [TraceRecord(trace_id=t, start_time_ns=n, prompts=[f"prompts:/greet/{n}"]) for n, t in ids.items()]
        + [TraceRecord(trace_id="tr-" + "3" * 32, start_time_ns=3)]
    )
    return ids


def _found(client: RegistryClient, prompt: str) -> list[str]:
    return [t.trace_id for t in client.search_traces(prompt=prompt)[0]]


def test_versions_aliases_and_latest_select_the_version_they_name_now(
    client: RegistryClient, traffic: dict[int, str]
) -> None:
    assert _found(client, "prompts:/greet/1") == [traffic[1]]
    assert _found(client, "prompts:/greet@production") == [traffic[1]]
    assert _found(client, "prompts:/greet/latest") == [traffic[2]]
    assert _found(client, "prompts:/greet@latest") == [traffic[2]]
    assert client.trace_stats(prompt="prompts:/greet@production").count == 1
    client.set_prompt_alias("greet", "production", 2)  # the alias moved: it names version 2 now
    assert _found(client, "prompts:/greet@production") == [traffic[2]]


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("greet", FORMS),
        ("garbage", FORMS),
        ("prompts:/greet", FORMS),
        ("models:/greet/1", FORMS),
        ("prompts:/greet/0", "versions are positive integers"),
    ],
)
def test_anything_but_a_prompt_uri_is_refused(
    client: RegistryClient, traffic: dict[int, str], prompt: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=r"^prompt filter: ") as refused:
        client.search_traces(prompt=prompt)
    assert message in str(refused.value)


def test_an_unknown_alias_or_prompt_is_not_found(client: RegistryClient, traffic: dict[int, str]) -> None:
    with pytest.raises(NotFound, match="alias 'staging' of prompt 'greet' not found"):
        client.search_traces(prompt="prompts:/greet@staging")
    with pytest.raises(NotFound, match="prompt 'ghost' not found"):
        client.search_traces(prompt="prompts:/ghost/latest")


@pytest.fixture
def api(client: RegistryClient, traffic: dict[int, str], tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path, store_url=client.store_url), agent=loaded(AsyncEcho()))
    with TestClient(app) as http:
        yield http


@pytest.mark.parametrize(
    ("prompt", "version"),
    [("prompts:/greet/1", 1), ("prompts:/greet@production", 1), ("prompts:/greet/latest", 2)],
)
def test_the_api_resolves_aliases_and_latest(
    api: TestClient, traffic: dict[int, str], prompt: str, version: int
) -> None:
    r = api.get("/api/traces", params={"prompt": prompt})
    assert r.status_code == 200, r.text
    assert [t["trace_id"] for t in r.json()["traces"]] == [traffic[version]]


@pytest.mark.parametrize(
    ("prompt", "status", "message"),
    [
        ("greet", 400, FORMS),
        ("garbage", 400, FORMS),
        ("prompts:/greet@staging", 404, "alias 'staging' of prompt 'greet' not found"),
    ],
)
def test_the_api_refuses_what_it_cannot_resolve(
    api: TestClient, prompt: str, status: int, message: str
) -> None:
    r = api.get("/api/traces", params={"prompt": prompt})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("uri", "status", "message"),
    [
        ("garbage", 400, "not a prompt URI: 'garbage'"),
        ("greet", 400, FORMS),
        ("", 400, "not a prompt URI"),
        ("prompts:/ghost/1", 404, "version 1 of prompt 'ghost' not found"),
    ],
)
def test_resolve_refuses_a_malformed_uri_with_400(
    api: TestClient, uri: str, status: int, message: str
) -> None:
    r = api.get("/api/prompts/resolve", params={"uri": uri})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]


def test_traces_list_prompt_on_the_command_line(
    client: RegistryClient, traffic: dict[int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    def run(prompt: str) -> tuple[int, Any, str]:
        code = main(["traces", "list", "--store-url", client.store_url, "--json", "--prompt", prompt])
        out, err = capsys.readouterr()
        return code, json.loads(out) if out else None, err

    code, out, _ = run("prompts:/greet@production")
    assert code == 0 and [t["trace_id"] for t in out["traces"]] == [traffic[1]]
    code, out, err = run("greet")
    assert (code, out) == (2, None) and FORMS in err
