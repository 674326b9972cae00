"""Query parameters of the JSON APIs: a bad one is a 400 naming it, never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from registry.client import RegistryClient
from registry.entities import ModelStatus
from runtime.app import create_app
from runtime.config import Settings
from tests.servers import serve_app

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo_agent.py"


@pytest.mark.parametrize(
    ("query", "code", "param"),
    [
        ("/api/logged-models?status=BOGUS", "invalid_argument", None),
        ("/api/logged-models?limit=abc", "bad_request", "limit"),
        ("/api/logged-models?limit=0", "bad_request", "limit"),
        ("/api/assessments?limit=-5", "bad_request", "limit"),
        ("/api/assessments?limit=x", "bad_request", "limit"),
    ],
)
def test_a_bad_query_parameter_is_a_400_that_names_it(
    tmp_path: Path, query: str, code: str, param: str | None
) -> None:
    settings = Settings.from_env(environ={}, home=str(tmp_path / "home"), model=str(ECHO))
    with serve_app(create_app(settings)) as url:
        r = httpx.get(url + query)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert (error["code"], error["param"]) == (code, param)
        if code == "invalid_argument":
            assert "unknown status 'BOGUS'" in error["message"]
        assert httpx.get(url + query.split("?", maxsplit=1)[0] + "?limit=5").status_code == 200


def test_filters_left_empty_are_no_filter_and_statuses_take_any_case(tmp_path: Path) -> None:
    settings = Settings.from_env(environ={}, home=str(tmp_path / "home"), model=str(ECHO))
    with RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root) as client:
        logged = client.log_model(ECHO, "echo")
        assert logged.status is ModelStatus.READY
        client.register_model(f"models:/{logged.model_id}", "echo-bot")
    with serve_app(create_app(settings)) as url:
        for query, key in (
            ("/api/logged-models?status=ready", "logged_models"),
            ("/api/logged-models?name=", "logged_models"),
            ("/api/models?name=", "registered_models"),
        ):
            r = httpx.get(url + query)
            assert (r.status_code, len(r.json()[key])) == (200, 1), (query, r.text)
