"""Serving registry models: every URI form, version headers, and alias hot-swap under load."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from registry.client import RegistryClient
from runtime.agents.validate import validate_agent_dir
from runtime.app import create_app
from runtime.config import Settings
from runtime.errors import AgentLoadError, NotFound
from runtime.loading import load_target
from tests.servers import serve_app, wait_until

AGENT = """
from runtime.agents import ResponsesAgent, ResponsesAgentResponse, set_agent

class Versioned(ResponsesAgent):
    name = "support"

    def predict(self, request):
        return ResponsesAgentResponse(output=[self.create_text_output_item("{answer}", "m1")])

set_agent(Versioned())
"""
BROKEN_AT_EXAMPLE = """
from runtime.agents import ResponsesAgent, set_agent

class Broken(ResponsesAgent):
    def predict(self, request):
        raise RuntimeError("cannot answer")

set_agent(Broken())
"""
EXAMPLE = {"input": [{"role": "user", "content": "ping"}]}
BODY = {"input": [{"role": "user", "content": "q"}]}


def log(client: RegistryClient, tmp_path: Path, answer: str, source: str = AGENT) -> str:
    folder = tmp_path / f"src-{answer}"
    folder.mkdir()
    path = folder / "agent.py"
    path.write_text(source.replace("{answer}", answer))
    return client.log_model(path, "support", input_example=EXAMPLE, validate=validate_agent_dir).model_id


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=str(tmp_path / "home"), alias_poll_interval=0.1, sse_ping_interval=0)


@pytest.fixture
def client(settings: Settings) -> RegistryClient:
    c = RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root)
    yield c  # type: ignore[misc]
    c.close()


def test_every_uri_form_serves(settings: Settings, client: RegistryClient, tmp_path: Path) -> None:
    m1 = log(client, tmp_path, "v1")
    m2 = log(client, tmp_path, "v2")
    client.register_model(f"models:/{m1}", "support-bot")
    client.register_model(f"models:/{m2}", "support-bot")
    client.set_alias("support-bot", "champion", 1)
    cases = {
        f"models:/{m1}": ("v1", None),
        "models:/support-bot/2": ("v2", "2"),
        "models:/support-bot@champion": ("v1", "1"),
        "models:/support-bot/latest": ("v2", "2"),
    }
    for uri, (answer, version) in cases.items():
        loaded = load_target(uri, settings)
        assert loaded.info.uri == uri
        assert loaded.info.version == version
        with serve_app(create_app(settings.with_(model=uri), agent=loaded)) as url:
            r = httpx.post(url + "/invocations", json=BODY)
            assert r.json()["output"][0]["content"][0]["text"] == answer
            assert r.headers["x-runtime-model-id"] == (m1 if answer == "v1" else m2)
            assert r.headers.get("x-runtime-model-version") == version
            model = httpx.get(url + "/v1/models").json()["data"][0]
            assert (model["model_id"], model["version"]) == (r.headers["x-runtime-model-id"], version)


@pytest.mark.parametrize(
    ("uri", "error", "match"),
    [
        ("models:/support-bot@nope", NotFound, "nope"),
        ("models:/support-bot/9", NotFound, "9"),
        ("models:/m-" + "0" * 32, NotFound, "m-0"),
        ("models:/", AgentLoadError, "models:/"),
    ],
)
def test_unknown_or_malformed_uris_fail_clearly(
    settings: Settings, client: RegistryClient, tmp_path: Path, uri: str, error: type[Exception], match: str
) -> None:
    client.register_model(f"models:/{log(client, tmp_path, 'v1')}", "support-bot")
    with pytest.raises(error, match=match):
        load_target(uri, settings)


def test_alias_move_hot_swaps_under_load_with_zero_failures(
    settings: Settings, client: RegistryClient, tmp_path: Path
) -> None:
    for answer in ("v1", "v2"):
        client.register_model(f"models:/{log(client, tmp_path, answer)}", "support-bot")
    client.set_alias("support-bot", "champion", 1)
    uri = "models:/support-bot@champion"
    seen: list[tuple[int, str, str | None]] = []
    stop = threading.Event()

    with serve_app(create_app(settings.with_(model=uri))) as url:

        def hammer() -> None:
            with httpx.Client(base_url=url, timeout=10) as http:
                for _ in range(2000):  # bounded
                    if stop.is_set():
                        return
                    r = http.post("/invocations", json=BODY)
                    text = r.json()["output"][0]["content"][0]["text"] if r.status_code == 200 else r.text
                    seen.append((r.status_code, text, r.headers.get("x-runtime-model-version")))

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for w in workers:
            w.start()
        assert wait_until(lambda: len(seen) > 50, timeout=20)
        client.set_alias("support-bot", "champion", 2)
        assert wait_until(lambda: seen and seen[-1][1] == "v2", timeout=20), "no swap to v2"
        count = len(seen)
        assert wait_until(lambda: len(seen) > count + 50, timeout=20)
        stop.set()
        for w in workers:
            w.join(20)
    assert all(status == 200 for status, _, _ in seen), {s for s, _, _ in seen}
    assert {(text, version) for _, text, version in seen} == {("v1", "1"), ("v2", "2")}
    first_v2 = next(i for i, (_, text, _) in enumerate(seen) if text == "v2")
    assert all(text == "v2" for _, text, _ in seen[first_v2 + 8 :])  # at most in-flight stragglers


def test_a_version_that_fails_its_example_never_replaces_the_served_one(
    settings: Settings, client: RegistryClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client.register_model(f"models:/{log(client, tmp_path, 'v1')}", "support-bot")
    client.set_alias("support-bot", "champion", 1)
    # Logged without validation, so the registry holds a READY-looking model that fails at serving time.
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "agent.py").write_text(BROKEN_AT_EXAMPLE)
    broken = client.log_model(folder / "agent.py", "support", input_example=EXAMPLE).model_id
    client.register_model(f"models:/{broken}", "support-bot")
    with serve_app(create_app(settings.with_(model="models:/support-bot@champion"))) as url:
        client.set_alias("support-bot", "champion", 2)

        def reported() -> bool:
            return "last_load_error" in httpx.get(url + "/ready").json()

        assert wait_until(reported, timeout=10)
        shown = httpx.get(url + "/ready").json()["last_load_error"]  # no key needed: no exception text
        assert "did not load (the server log says why)" in shown and "input example" not in shown
        assert "failed its input example" in caplog.text
        r = httpx.post(url + "/invocations", json=BODY)
        assert r.json()["output"][0]["content"][0]["text"] == "v1"
        assert r.headers["x-runtime-model-version"] == "1"
        client.set_alias("support-bot", "champion", 1)  # pointed back at what is served: nothing is wrong
        assert wait_until(lambda: not reported(), timeout=10)


def test_an_alias_that_comes_back_clears_the_load_error(
    settings: Settings, client: RegistryClient, tmp_path: Path
) -> None:
    client.register_model(f"models:/{log(client, tmp_path, 'v1')}", "support-bot")
    client.set_alias("support-bot", "champion", 1)
    with serve_app(create_app(settings.with_(model="models:/support-bot@champion"))) as url:

        def ready() -> dict[str, object]:
            body: dict[str, object] = httpx.get(url + "/ready").json()
            return body

        client.delete_alias("support-bot", "champion")
        assert wait_until(lambda: "not found" in str(ready().get("last_load_error")), timeout=10)
        client.set_alias("support-bot", "champion", 1)  # the same version as before
        assert wait_until(lambda: "last_load_error" not in ready(), timeout=10)
        assert httpx.post(url + "/invocations", json=BODY).json()["output"][0]["content"][0]["text"] == "v1"


def test_logging_a_model_that_fails_its_example_marks_it_failed(
    client: RegistryClient, tmp_path: Path
) -> None:
    with pytest.raises(AgentLoadError, match="failed its input example"):
        log(client, tmp_path, "x", BROKEN_AT_EXAMPLE)
    failed = client.search_logged_models(name="support")
    assert [m.status for m in failed] == ["FAILED"]
