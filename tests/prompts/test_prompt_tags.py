"""Prompt-level tags, the ones ``search_prompts("tags.k = 'v'")`` filters, as MLflow 3 has them.

Set at registration (a version's tags also go on its prompt, as MLflow's ``register_prompt`` does) and with
``set_prompt_tag`` / ``delete_prompt_tag``, through the client, ``runtime prompts`` and ``/api/prompts``;
each on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from registry import InvalidArgument, NotFound, RegistryClient
from runtime.app import create_app
from runtime.cli.main import main
from runtime.config import Settings
from tests.serving.agents import AsyncEcho, loaded

ADMIN = {"Authorization": "Bearer admin-key"}


def _names(client: RegistryClient, filter_string: str) -> list[str]:
    return [p.name for p in client.search_prompts(filter_string)]


def test_registration_tags_are_set_on_the_prompt_and_searchable(client: RegistryClient) -> None:
    first = client.register_prompt("support", "Hi {{ x }}", tags={"team": "cx"})
    client.register_prompt("sales", "Buy {{ x }}", tags={"team": "growth"})
    assert first.tags == {"team": "cx"}
    assert client.get_prompt("support").tags == {"team": "cx"}
    assert _names(client, "name LIKE 'support%' AND tags.team = 'cx'") == ["support"]
    assert _names(client, "tags.team = 'growth'") == ["sales"]

    second = client.register_prompt("support", "Hello {{ x }}", tags={"team": "care", "lang": "en"})
    assert second.tags == {"team": "care", "lang": "en"}
    assert client.load_prompt("prompts:/support/1").tags == {"team": "cx"}  # versions keep their own
    assert client.get_prompt("support").tags == {"team": "care", "lang": "en"}  # later ones win, as MLflow
    assert _names(client, "tags.team = 'cx'") == []
    client.register_prompt("support", "untagged {{ x }}")
    assert client.get_prompt("support").tags == {"team": "care", "lang": "en"}


def test_set_and_delete_prompt_tags(client: RegistryClient) -> None:
    client.register_prompt("support", "x")
    assert client.set_prompt_tag("support", "owner", "ada").tags == {"owner": "ada"}
    assert _names(client, "tags.owner = 'ada'") == ["support"]
    assert client.load_prompt("support").tags == {}  # the version's tags are not the prompt's
    assert client.delete_prompt_tag("support", "owner").tags == {}
    assert client.delete_prompt_tag("support", "owner").tags == {}
    assert _names(client, "tags.owner = 'ada'") == []
    with pytest.raises(NotFound, match="prompt 'ghost' not found"):
        client.set_prompt_tag("ghost", "k", "v")
    with pytest.raises(InvalidArgument, match="tag keys must be non-empty"):
        client.set_prompt_tag("support", "", "v")


def test_the_readme_tag_example_finds_the_prompt(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, Prompts: ``register support --tag team=cx``, then ``search "... tags.team = 'cx'"``."""
    monkeypatch.delenv("RUNTIME_REDIS_URL", raising=False)
    template = tmp_path / "prompt.txt"
    template.write_text("You help {{ customer.name }}.")
    store = ["--store-url", store_url, "--artifact-root", str(tmp_path / "artifacts")]

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["prompts", *store, *args])
        out, err = capsys.readouterr()
        return code, out.strip(), err.strip()

    assert run("register", "support", "--template", str(template), "--tag", "team=cx")[0] == 0
    assert run("register", "other", "--template", str(template))[0] == 0
    code, out, _ = run("search", "name LIKE 'support%' AND tags.team = 'cx'")
    assert code == 0 and out.splitlines()[1].split()[0] == "support" and len(out.splitlines()) == 2

    assert run("prompt-tag", "other", "reviewed", "yes") == (0, "reviewed=yes", "")
    assert run("search", "tags.reviewed = 'yes'")[1].splitlines()[1].split()[0] == "other"
    assert run("prompt-tag", "--delete", "other", "reviewed") == (0, "", "")
    assert run("search", "tags.reviewed = 'yes'") == (0, "no prompts", "")
    assert run("prompt-tag", "other", "reviewed") == (
        2,
        "",
        "error: prompt-tag needs NAME KEY VALUE (or --delete NAME KEY)",
    )
    assert run("prompt-tag", "ghost", "k", "v") == (1, "", "error: prompt 'ghost' not found")


@pytest.fixture
def api(store_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings.from_env(
        environ={},
        home=str(tmp_path / "home"),
        store_url=store_url,
        tracing=False,
        admin_keys=("admin-key",),
    )
    with TestClient(create_app(settings, agent=loaded(AsyncEcho()))) as client:
        yield client


def test_prompt_tags_over_http(api: TestClient) -> None:
    r = api.post(
        "/api/prompts/support/versions", json={"template": "x", "tags": {"team": "cx"}}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    found = api.get("/api/prompts", params={"filter": "tags.team = 'cx'"}).json()["prompts"]
    assert [p["name"] for p in found] == ["support"]

    r = api.patch("/api/prompts/support", json={"tags": {"team": None, "owner": "ada"}}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["prompt"]["tags"] == {"owner": "ada"}
    assert api.get("/api/prompts/support").json()["prompt"]["tags"] == {"owner": "ada"}
    assert api.get("/api/prompts", params={"filter": "tags.team = 'cx'"}).json()["prompts"] == []


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "message"),
    [
        ("/api/prompts/support", {"tags": {"k": "v"}}, {"Authorization": "Bearer wrong"}, 403, ""),
        ("/api/prompts/support", {"tags": {"": "v"}}, ADMIN, 400, "tag keys"),
        ("/api/prompts/support", {"tags": {"k": 1}}, ADMIN, 400, "tags.k"),
        ("/api/prompts/support", {"owner": "x"}, ADMIN, 400, "owner"),
        ("/api/prompts/ghost", {"tags": {"k": "v"}}, ADMIN, 404, "prompt 'ghost' not found"),
    ],
)
def test_bad_prompt_tag_edits_change_nothing(
    api: TestClient, path: str, body: object, headers: dict[str, str], status: int, message: str
) -> None:
    api.post("/api/prompts/support/versions", json={"template": "x"}, headers=ADMIN)
    r = api.patch(path, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]
    assert api.get("/api/prompts/support").json()["prompt"]["tags"] == {}
