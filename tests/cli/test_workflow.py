"""The README workflow, as a user types it: log -> register -> alias -> serve, then manage over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import ROOT, ServeProcess


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RUNTIME_HOME": str(home),
        "RUNTIME_STORE_URL": f"sqlite:///{home}/runtime.db",
        "RUNTIME_ARTIFACT_ROOT": str(home / "artifacts"),
    }
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_log_register_alias_serve_and_admin_api(tmp_path: Path) -> None:
    home = tmp_path / "home"
    example = tmp_path / "example.json"
    example.write_text(json.dumps({"input": [{"role": "user", "content": "hi"}]}))
    logged = cli(
        home,
        "models",
        "log",
        "examples/echo_agent.py",
        "--name",
        "echo",
        "--param",
        "temp=0",
        "--input-example",
        str(example),
    )
    assert logged.returncode == 0, logged.stderr
    uri = logged.stdout.strip()
    assert uri.startswith("models:/m-")
    registered = cli(home, "models", "register", uri, "--name", "support-bot")
    assert (registered.returncode, registered.stdout.strip()) == (0, "1")
    assert cli(home, "models", "alias", "support-bot", "champion", "1").returncode == 0
    shown = cli(home, "models", "show", "models:/support-bot@champion", "--json")
    assert json.loads(shown.stdout)["model"]["params"] == {"temp": "0"}

    env = {"RUNTIME_HOME": str(home), "RUNTIME_ADMIN_KEYS": "admin-secret"}
    with ServeProcess(["models:/support-bot@champion"], env=env) as server:
        server.wait_ready()
        r = httpx.post(server.url + "/v1/responses", json={"input": "served from the registry"})
        assert r.json()["output"][0]["content"][0]["text"] == "served from the registry"
        assert r.headers["x-runtime-model-version"] == "1"

        api = server.url + "/api/models"
        assert httpx.get(api).json()["registered_models"][0]["name"] == "support-bot"
        denied = httpx.post(api + "/support-bot/versions", json={"model_uri": uri})
        assert (denied.status_code, denied.json()["error"]["code"]) == (403, "forbidden")
        admin = {"authorization": "Bearer admin-secret"}
        created = httpx.post(api + "/support-bot/versions", json={"model_uri": uri}, headers=admin)
        assert (created.status_code, created.json()["model_version"]["version"]) == (201, 2)
        moved = httpx.put(api + "/support-bot/aliases/champion", json={"version": 2}, headers=admin)
        assert moved.json()["model_version"]["aliases"] == ["champion"]
        unknown = httpx.put(api + "/support-bot/aliases/champion", json={"version": 9}, headers=admin)
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
        bad = httpx.post(api + "/support-bot/versions", json={"model_uri": "nope:/x"}, headers=admin)
        assert bad.status_code == 400
        assert httpx.get(api + "/nope").status_code == 404
        r = httpx.get(api + "/support-bot").json()
        assert sorted(v["version"] for v in r["versions"]) == [1, 2]

    bad_log = cli(home, "models", "log", str(tmp_path / "missing.py"), "--name", "x")
    assert bad_log.returncode == 1
    assert bad_log.stderr.startswith("error: ")
    usage = cli(home, "models", "alias", "support-bot")
    assert usage.returncode == 2
