"""``GET /api/assessments``: newest first, keyset-paged like ``/api/traces``, on SQLite and PostgreSQL.

"The latest 20 relevance scores" must be the latest, not the first 20 ever recorded, and every score must
be reachable however many there are.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from registry import InvalidArgument
from registry.entities import Assessment, TraceRecord
from registry.store import SqlStore
from runtime.app import create_app
from runtime.config import Settings
from tests.serving.agents import AsyncEcho, loaded

TRACE = "tr-" + "a" * 32
OTHER = "tr-" + "b" * 32


def _log(store: SqlStore, count: int, *, name: str = "relevance", trace_id: str = TRACE) -> list[str]:
    """``count`` assessments, two per millisecond (ties are broken by id), oldest first."""
    ids = []
    for i in range(count):
        stored = store.log_assessment(
            Assessment(trace_id=trace_id, name=name, value=i % 2 == 0, creation_time=1_000_000 + i // 2)
        )
        ids.append(stored.assessment_id)
    return ids


def _newest_first(store: SqlStore, ids: list[str]) -> list[str]:
    found = [store.get_assessment(i) for i in ids]
    return [
        a.assessment_id for a in sorted(found, key=lambda a: (a.creation_time, a.assessment_id), reverse=True)
    ]


def test_pages_newest_first_through_every_assessment(store: SqlStore) -> None:
    ids = _log(store, 7)
    _log(store, 3, name="pii")
    seen: list[str] = []
    page, token = store.page_assessments(name="relevance", limit=3)
    while True:
        seen += [a.assessment_id for a in page]
        if token is None:
            break
        page, token = store.page_assessments(name="relevance", limit=3, page_token=token)
    assert seen == _newest_first(store, ids)
    last, end = store.page_assessments(name="relevance", limit=7)
    assert len(last) == 7 and end is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 1001}, "limit must be between 1 and 1000"),
        ({"page_token": "not-a-token"}, "invalid page_token"),
    ],
)
def test_bad_limits_and_tokens_are_refused(store: SqlStore, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.page_assessments(**kwargs)


@pytest.fixture
def api(store_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, SqlStore]]:
    settings = Settings.from_env(environ={}, home=str(tmp_path / "home"), store_url=store_url, tracing=False)
    with SqlStore(store_url) as store, TestClient(create_app(settings, agent=loaded(AsyncEcho()))) as client:
        yield client, store


def test_the_api_answers_the_latest_first_with_next_page_token(api: tuple[TestClient, SqlStore]) -> None:
    client, store = api
    ids = _log(store, 5)
    _log(store, 2, trace_id=OTHER)
    first = client.get("/api/assessments", params={"name": "relevance", "trace_id": TRACE, "limit": 2}).json()
    assert [a["assessment_id"] for a in first["assessments"]] == _newest_first(store, ids)[:2]
    assert first["next_page_token"]
    seen = [a["assessment_id"] for a in first["assessments"]]
    token = first["next_page_token"]
    while token:
        page = client.get(
            "/api/assessments", params={"trace_id": TRACE, "limit": 2, "page_token": token}
        ).json()
        seen += [a["assessment_id"] for a in page["assessments"]]
        token = page["next_page_token"]
    assert seen == _newest_first(store, ids)
    everything = client.get("/api/assessments").json()
    assert len(everything["assessments"]) == 7 and everything["next_page_token"] is None


def _token(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page_token": "garbage"}, "invalid page_token"),
        ({"page_token": _token("traces", 5, "tr-" + "0" * 32)}, "invalid page_token"),  # another search's
        ({"page_token": _token(5, "a-" + "0" * 32)}, "invalid page_token"),
        ({"page_token": _token("assessments", "5", "a-1")}, "invalid page_token"),
        # JSON nested past the parser's recursion limit (it was a 500 with a traceback in the log)
        (
            {"page_token": base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()},
            "invalid page_token",
        ),
        ({"limit": "1001"}, "limit must be between 1 and 1000"),
        ({"limit": "0"}, "limit must be between 1 and 1000"),
    ],
)
def test_unknown_page_tokens_and_limits_are_400(
    api: tuple[TestClient, SqlStore], params: dict[str, str], message: str
) -> None:
    client, store = api
    _log(store, 3)
    r = client.get("/api/assessments", params=params)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]


def test_a_traces_page_token_is_refused_by_assessments(api: tuple[TestClient, SqlStore]) -> None:
    """The two searches page alike, but a token only works for the search that issued it."""
    client, store = api
    store.log_assessment(Assessment(trace_id=TRACE, name="x", value=True))
    store.log_traces([TraceRecord(trace_id=t, start_time_ns=n) for n, t in enumerate((TRACE, OTHER), 1)])
    _, traces_token = store.search_traces(limit=1)
    assert traces_token
    r = client.get("/api/assessments", params={"page_token": traces_token})
    assert r.status_code == 400 and "invalid page_token" in r.json()["error"]["message"]
