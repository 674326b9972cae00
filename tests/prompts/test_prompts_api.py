"""``/api/prompts``: admin-keyed writes, the one error body, and writes that refresh the served cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from runtime.app import create_app
from runtime.config import Settings
from runtime.prompts import load_prompt
from tests.serving.agents import AsyncEcho, loaded

ADMIN = {"Authorization": "Bearer admin-key"}


def _app(tmp_path: Path, **settings: Any) -> TestClient:
    values: dict[str, Any] = {
        "home": str(tmp_path / "home"),
        "store_url": f"sqlite:///{tmp_path / 'api.db'}",
        "tracing": False,
        "prompt_cache_ttl": 600.0,
        **settings,
    }
    return TestClient(create_app(Settings.from_env(environ={}, **values), agent=loaded(AsyncEcho())))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with _app(tmp_path, admin_keys=("admin-key",)) as client:
        yield client


def _register(api: TestClient, name: str, body: dict[str, Any], status: int = 201) -> Any:
    r = api.post(f"/api/prompts/{name}/versions", json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    return r.json()


def test_register_read_search_and_edit(api: TestClient) -> None:
    first = _register(
        api, "support", {"template": "Hi {{ name }}", "commit_message": "first", "tags": {"a": "1"}}
    )
    assert first["prompt_version"]["version"] == 1 and first["prompt_version"]["variables"] == ["name"]
    chat = [{"role": "system", "content": "Be {{ tone }}"}]
    second = _register(
        api,
        "support",
        {"template": chat, "response_format": {"type": "object"}, "model_config": {"temperature": 0.3}},
    )["prompt_version"]
    assert (second["version"], second["template"], second["model_config"]) == (2, chat, {"temperature": 0.3})

    assert [p["name"] for p in api.get("/api/prompts").json()["prompts"]] == ["support"]
    assert api.get("/api/prompts", params={"filter": "name LIKE 'x%'"}).json() == {"prompts": []}
    listed = api.get("/api/prompts/support").json()
    assert [v["version"] for v in listed["versions"]] == [2, 1]
    assert api.get("/api/prompts/support/versions/1").json()["prompt_version"]["template"] == "Hi {{ name }}"
    resolved = api.get("/api/prompts/resolve", params={"uri": "prompts:/support@latest"}).json()
    assert resolved["prompt_version"]["version"] == 2

    r = api.patch(
        "/api/prompts/support/versions/1",
        json={"commit_message": "reworded", "tags": {"a": None, "b": "2"}},
        headers=ADMIN,
    )
    assert r.status_code == 200
    edited = r.json()["prompt_version"]
    assert (edited["commit_message"], edited["tags"], edited["template"]) == (
        "reworded",
        {"b": "2"},
        "Hi {{ name }}",
    )

    assert (
        api.put("/api/prompts/support/aliases/production", json={"version": 1}, headers=ADMIN).status_code
        == 200
    )
    assert api.get("/api/prompts", params={"alias": "production"}).json()["prompts"][0]["aliases"] == {
        "production": 1
    }
    assert api.delete("/api/prompts/support/aliases/production", headers=ADMIN).status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/api/prompts/support/versions", {"template": "x"}, 403, "forbidden"),
        ("put", "/api/prompts/support/aliases/prod", {"version": 1}, 403, "forbidden"),
        ("delete", "/api/prompts/support/aliases/prod", None, 403, "forbidden"),
        ("patch", "/api/prompts/support/versions/1", {"commit_message": "x"}, 403, "forbidden"),
    ],
)
def test_writes_need_the_admin_key(
    api: TestClient, method: str, path: str, body: Any, status: int, code: str
) -> None:
    _register(api, "support", {"template": "kept"})
    r = api.request(method, path, json=body, headers={"Authorization": "Bearer wrong"})
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert api.get("/api/prompts/support/versions/1").json()["prompt_version"]["commit_message"] is None


@pytest.mark.parametrize(
    ("request_", "status", "message"),
    [
        (("post", "/api/prompts/bad%20name/versions", {"template": "x"}), 400, "invalid prompt name"),
        (
            ("post", "/api/prompts/p/versions", {"template": "Hi {{ x"}),
            400,
            "unbalanced or invalid placeholder",
        ),
        (
            ("post", "/api/prompts/p/versions", {"template": "x", "response_format": {"a": 1}}),
            400,
            "JSON schema",
        ),
        (("post", "/api/prompts/p/versions", {"commit_message": "no template"}), 400, "template"),
        (("post", "/api/prompts/p/versions", {"template": "x", "extra": 1}), 400, "extra"),
        (("put", "/api/prompts/support/aliases/latest", {"version": 1}), 400, "reserved"),
        (("put", "/api/prompts/support/aliases/prod", {"version": 9}), 404, "version 9 of prompt 'support'"),
        (("delete", "/api/prompts/support/aliases/prod", None), 404, "alias 'prod' of prompt 'support'"),
        (("patch", "/api/prompts/support/versions/9", {"commit_message": "x"}), 404, "version 9"),
        (("patch", "/api/prompts/support/versions/1", {"tags": {"": "v"}}), 400, "tag keys"),
        (("get", "/api/prompts/ghost", None), 404, "prompt 'ghost' not found"),
        (("get", "/api/prompts/support/versions/x", None), 400, "invalid version 'x'"),
        (("get", "/api/prompts/resolve?uri=prompts:/support", None), 400, "malformed prompt URI"),
        (("get", "/api/prompts?filter=owner%20%3D%20'me'", None), 400, "cannot parse filter clause"),
    ],
)
def test_bad_requests_get_the_one_error_body_and_change_nothing(
    api: TestClient, request_: tuple[str, str, Any], status: int, message: str
) -> None:
    _register(api, "support", {"template": "kept"})
    method, path, body = request_
    r = api.request(method, path, json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]
    listed = api.get("/api/prompts").json()["prompts"]
    assert [(p["name"], p["latest_version"], p["aliases"]) for p in listed] == [("support", 1, {})]
    assert api.get("/api/prompts/support/versions/1").json()["prompt_version"]["tags"] == {}


def test_writes_through_the_api_refresh_this_servers_cache_at_once(api: TestClient) -> None:
    for text in ("one", "two"):
        _register(api, "support", {"template": text})
    api.put("/api/prompts/support/aliases/production", json={"version": 1}, headers=ADMIN)
    assert load_prompt("prompts:/support@production").template == "one"  # cached for 600 s from now on
    api.put("/api/prompts/support/aliases/production", json={"version": 2}, headers=ADMIN)
    assert load_prompt("prompts:/support@production").template == "two"
    _register(api, "support", {"template": "three"})
    assert load_prompt("support").template == "three"


def test_without_redis_the_server_serves_and_says_it_is_degraded(tmp_path: Path) -> None:
    with _app(tmp_path, redis_url="redis://127.0.0.1:9/0") as api:
        _register(api, "support", {"template": "one"})
        r = api.put("/api/prompts/support/aliases/production", json={"version": 1})  # announced to no one
        assert r.status_code == 200
        ready = api.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded" and "prompt_notifications" in ready.json()["degraded"]
        assert load_prompt("prompts:/support@production").template == "one"
