"""A store URL's password never reaches a message, whether the URL parses or not."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import event

from registry.errors import InvalidArgument, StoreUnavailable
from registry.redaction import redacted_url
from registry.store.engine import CONNECT_TIMEOUT, Database


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:S3CRETPW@127.0.0.1:abc/db",  # a port that is not a number
        "postgresql+psycopg://u:S3CRETPW@[::1/db",  # an unclosed IPv6 bracket
        "postgresql+psycopg://u:S3C@RETPW@127.0.0.1:abc/db",  # an @ in the password
        "mysql://u:S3CRETPW@db/x",  # parses, unsupported
        "postgresql+psycopg://u@127.0.0.1:abc/db?password=S3CRETPW",  # libpq's query-string form
        "postgresql+psycopg://u@127.0.0.1:abc/db?sslmode=require&PASSWORD=S3CRETPW&x=1",
    ],
)
def test_a_bad_store_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        Database(url)
    assert "S3C" not in str(raised.value) and "RETPW" not in str(raised.value)
    assert "***" in str(raised.value)
    assert raised.value.__cause__ is None or "S3C" not in str(raised.value.__cause__)


def test_redacted_url_keeps_what_is_not_a_password() -> None:
    assert redacted_url("redis://:pw@127.0.0.1:6379/9") == "redis://:***@127.0.0.1:6379/9"
    assert redacted_url("postgresql://user@host/db") == "postgresql://user@host/db"
    assert redacted_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_postgresql_connections_time_out_unless_the_url_says_otherwise() -> None:
    seen: list[dict[str, object]] = []
    for url, expected in [
        ("postgresql+psycopg://127.0.0.1:5432/test", CONNECT_TIMEOUT),
        ("postgresql+psycopg://127.0.0.1:5432/test?connect_timeout=3", "3"),
    ]:
        db = Database(url)

        @event.listens_for(db.engine, "do_connect")
        def spy(dialect: object, record: object, cargs: object, cparams: dict[str, object]) -> None:
            seen.append(dict(cparams))

        try:
            with db.engine.connect():
                pass
        finally:
            db.engine.dispose()
        assert seen[-1]["connect_timeout"] == expected


def test_a_server_that_accepts_but_never_answers_makes_the_store_unavailable() -> None:
    with socket.socket() as listener:  # accepts connections (the kernel does) and never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        db = Database(f"postgresql+psycopg://u@127.0.0.1:{port}/db?connect_timeout=1")
        with pytest.raises(StoreUnavailable), db.read("probe"):
            pass
        db.engine.dispose()
