"""Database and Redis URLs, probes and database creation (devtools.stack.network)."""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import environ
import psycopg
import pytest

from devtools.stack import network
from devtools.stack.supervise import free_port  # bound, then closed again

# --------------------------------------------------------------------------- URLs


def test_socket_database_url_is_understood_by_django_environ() -> None:
    url = network.socket_database_url("/srv/my data/pg", 5432, "flotilla")
    config = environ.Env.db_url_config(url)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "flotilla"
    assert config["USER"] == "postgres"
    assert config["HOST"] == ""
    assert config["OPTIONS"] == {"host": "/srv/my data/pg", "port": 5432}


def test_tcp_database_url_is_understood_by_django_environ() -> None:
    config = environ.Env.db_url_config(
        network.tcp_database_url("127.0.0.1", 5432, "flotilla")
    )
    assert (config["HOST"], config["PORT"], config["NAME"]) == (
        "127.0.0.1",
        5432,
        "flotilla",
    )


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("[::]:8080", "http://127.0.0.1:8080"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("localhost", "http://localhost:8000"),
        ("unix:/run/flotilla.sock", None),
    ],
)
def test_display_url(bind: str, url: str | None) -> None:
    assert network.display_url(bind) == url


# --------------------------------------------------------------------------- probes


def test_port_open_and_closed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert network.port_open("127.0.0.1", port)
    assert not network.port_open("127.0.0.1", port)


def test_a_listener_that_is_not_redis_does_not_count() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert not network.redis_answers(
            "127.0.0.1", server.getsockname()[1], timeout=0.2
        )


def test_postgres_probe_on_afree_port() -> None:
    assert not network.postgres_answers(
        f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", timeout=1
    )


def _server_url() -> str:
    # Set by `python -m devtools.stack test`; the settings' default otherwise.
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flotilla")


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def test_ensure_database_creates_a_missing_database_once() -> None:
    name = f"flotilla_stack_{uuid.uuid4().hex[:10]}"
    url = _with_database(_server_url(), name)
    try:
        assert network.ensure_database(url) is True
        assert network.ensure_database(url) is False
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    finally:
        admin = _with_database(url, "postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
