"""Provisioning decisions of ``config.stack`` (`make run` / `make test`).

Nothing here stops a service it did not start: the embedded servers run in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
import psycopg
import pytest
import redis

from config import stack


def _probe_must_not_run() -> bool:
    raise AssertionError("probe ran although the environment decided")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- make_plan


def test_environment_urls_win_without_probing() -> None:
    plan = stack.make_plan(
        {"DATABASE_URL": "postgres://db/x", "REDIS_URL": "redis://r:6379/0"},
        postgres_reachable=_probe_must_not_run,
        redis_reachable=_probe_must_not_run,
    )
    assert plan == stack.Plan(database="env", redis="env")


def test_local_services_when_they_answer() -> None:
    plan = stack.make_plan(
        {}, postgres_reachable=lambda: True, redis_reachable=lambda: True
    )
    assert plan == stack.Plan(database="local", redis="local")


def test_embedded_when_nothing_answers() -> None:
    plan = stack.make_plan(
        {}, postgres_reachable=lambda: False, redis_reachable=lambda: False
    )
    assert plan == stack.Plan(database="embedded", redis="embedded")


def test_each_service_is_decided_on_its_own() -> None:
    plan = stack.make_plan(
        {"DATABASE_URL": "postgres://db/x"},
        postgres_reachable=_probe_must_not_run,
        redis_reachable=lambda: False,
    )
    assert plan == stack.Plan(database="env", redis="embedded")


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_flotilla_embedded_forces_embedded_servers(value: str) -> None:
    plan = stack.make_plan(
        {
            "FLOTILLA_EMBEDDED": value,
            "DATABASE_URL": "postgres://db/x",
            "REDIS_URL": "redis://r:6379/0",
        },
        postgres_reachable=_probe_must_not_run,
        redis_reachable=_probe_must_not_run,
    )
    assert plan == stack.Plan(database="embedded", redis="embedded")


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_flotilla_embedded_off_values_keep_the_order(value: str) -> None:
    plan = stack.make_plan(
        {"FLOTILLA_EMBEDDED": value},
        postgres_reachable=lambda: True,
        redis_reachable=lambda: False,
    )
    assert plan == stack.Plan(database="local", redis="embedded")


# --------------------------------------------------------------------------- provision


def test_provision_local_for_tests_uses_flotilla_and_redis_db_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[str] = []
    monkeypatch.setattr(stack, "ensure_database", lambda url: created.append(url))
    provisioned = stack.provision(
        "test", {}, plan=stack.Plan(database="local", redis="local")
    )
    assert provisioned.database_url == "postgres://postgres@127.0.0.1:5432/flotilla"
    assert provisioned.redis_url == "redis://127.0.0.1:6379/1"
    assert created == [provisioned.database_url]


def test_provision_run_uses_redis_db_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "ensure_database", lambda url: False)
    provisioned = stack.provision(
        "run", {}, plan=stack.Plan(database="local", redis="local")
    )
    assert provisioned.redis_url == "redis://127.0.0.1:6379/0"


def test_provision_passes_environment_urls_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stack, "ensure_database", lambda url: False)
    given = {
        "DATABASE_URL": "postgres://u:p@db.example:5433/other",
        "REDIS_URL": "redis://cache.example:6380/4",
    }
    provisioned = stack.provision(
        "test", given, plan=stack.Plan(database="env", redis="env")
    )
    env = provisioned.environ({"DATABASE_URL": "stale", "KEEP": "1"})
    assert env["DATABASE_URL"] == given["DATABASE_URL"]
    assert env["REDIS_URL"] == given["REDIS_URL"]
    assert env["KEEP"] == "1"


def test_database_url_that_cannot_be_checked_is_still_used() -> None:
    url = f"postgres://postgres@127.0.0.1:{_closed_port()}/flotilla"
    provisioned = stack.provision(
        "run",
        {"DATABASE_URL": url, "REDIS_URL": "redis://r/0"},
        plan=stack.Plan(database="env", redis="env"),
    )
    assert provisioned.database_url == url


def test_pytest_gets_the_ini_settings_not_the_config_package_default() -> None:
    provisioned = stack.Stack(
        plan=stack.Plan(database="local", redis="local"),
        database_url="postgres://postgres@127.0.0.1:5432/flotilla",
        redis_url="redis://127.0.0.1:6379/1",
    )
    env = stack.pytest_environ(
        provisioned, {"DJANGO_SETTINGS_MODULE": "config.settings.local"}
    )
    assert "DJANGO_SETTINGS_MODULE" not in env
    chosen = {"DJANGO_SETTINGS_MODULE": "config.settings.production"}
    assert stack.pytest_environ(provisioned, chosen) == {
        **chosen,
        "DATABASE_URL": provisioned.database_url,
        "REDIS_URL": provisioned.redis_url,
        "PYTHONUNBUFFERED": "1",
    }


# --------------------------------------------------------------------------- URLs


def test_socket_database_url_is_understood_by_django_environ() -> None:
    url = stack.socket_database_url("/srv/my data/pg", 5432, "flotilla")
    config = environ.Env.db_url_config(url)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "flotilla"
    assert config["USER"] == "postgres"
    assert config["HOST"] == ""
    assert config["OPTIONS"] == {"host": "/srv/my data/pg", "port": 5432}


def test_tcp_database_url_is_understood_by_django_environ() -> None:
    config = environ.Env.db_url_config(
        stack.tcp_database_url("127.0.0.1", 5432, "flotilla")
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
    assert stack.display_url(bind) == url


def test_banner_tells_where_and_how_to_log_in() -> None:
    provisioned = stack.Stack(plan=stack.Plan(database="local", redis="local"))
    text = stack.banner(
        provisioned,
        {
            "FLOTILLA_BIND": "0.0.0.0:8081",
            "FLOTILLA_ADMIN_EMAIL": "ops@example.com",
            "FLOTILLA_ADMIN_PASSWORD": "s3cret pass",
        },
    )
    assert "http://127.0.0.1:8081/admin/" in text
    assert "ops@example.com / s3cret pass" in text
    assert (
        "curl -X POST -u 'ops@example.com:s3cret pass' "
        "http://127.0.0.1:8081/api/management/v1/useradm/auth/login"
    ) in text


# --------------------------------------------------------------------------- probes


def test_port_open_and_closed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert stack.port_open("127.0.0.1", port)
    assert not stack.port_open("127.0.0.1", port)


def test_a_listener_that_is_not_redis_does_not_count() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert not stack.redis_answers(
            "127.0.0.1", server.getsockname()[1], timeout=0.2
        )


def test_postgres_probe_on_a_closed_port() -> None:
    assert not stack.postgres_answers(
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres", timeout=1
    )


def _server_url() -> str:
    # Set by `python -m config.stack test`; the settings' default otherwise.
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flotilla")


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def test_ensure_database_creates_a_missing_database_once() -> None:
    name = f"flotilla_stack_{uuid.uuid4().hex[:10]}"
    url = _with_database(_server_url(), name)
    try:
        assert stack.ensure_database(url) is True
        assert stack.ensure_database(url) is False
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    finally:
        admin = _with_database(url, "postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


# --------------------------------------------------------------------------- embedded servers


def test_forget_dead_handles_keeps_live_pids(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    handles = tmp_path / ".handle_pids.json"
    handles.write_text(json.dumps([os.getpid(), dead.pid]))
    stack._forget_dead_handles(tmp_path)
    assert json.loads(handles.read_text()) == [os.getpid()]


def test_embedded_redis_serves_tcp_and_stops(tmp_path: Path) -> None:
    embedded = stack.start_embedded_redis(tmp_path / "redis", persist=False)
    try:
        client = redis.Redis.from_url(embedded.url(1))
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    finally:
        embedded.stop()
    assert embedded.process.returncode is not None
    assert not stack.port_open("127.0.0.1", embedded.port)


def test_embedded_postgres_serves_a_created_database_and_stops() -> None:
    # Not tmp_path: as root, pgserver opens the path to its data for its own system user,
    # and every pytest session closes /tmp/pytest-of-root again (mode 0700).
    parent = Path(tempfile.mkdtemp(prefix="flotilla-stack-test-"))
    try:
        embedded = stack.start_embedded_postgres(parent / "pg")
        try:
            url = embedded.url("flotilla")
            assert environ.Env.db_url_config(url)["OPTIONS"]["host"]
            assert stack.ensure_database(url) is True
            with psycopg.connect(url) as conn:
                version = conn.execute("SHOW server_version_num").fetchone()[0]
            assert int(version) >= 160000
        finally:
            embedded.stop()
        # A clean shutdown removes postmaster.pid (the process may linger as a zombie).
        assert not (embedded.pgdata / "postmaster.pid").exists()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


# --------------------------------------------------------------------------- supervision


def _sleeper() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(60)"]


def test_supervisor_stops_the_rest_when_one_child_dies() -> None:
    supervisor = stack.Supervisor(signals=stack.Signals(), stop_timeout=5)
    supervisor.start("a", _sleeper(), os.environ)
    supervisor.start("b", [sys.executable, "-c", "raise SystemExit(3)"], os.environ)
    try:
        assert supervisor.wait(poll=0.05) == 3
    finally:
        supervisor.stop_all()
    assert [p.returncode is not None for _n, p in supervisor.children] == [True, True]


def test_supervisor_returns_0_on_a_signal_and_stops_children() -> None:
    signals = stack.Signals()
    supervisor = stack.Supervisor(signals=signals, stop_timeout=5)
    supervisor.start("a", _sleeper(), os.environ)
    supervisor.start("b", _sleeper(), os.environ)
    signals.received.append(15)
    try:
        assert supervisor.wait(poll=0.05) == 0
    finally:
        supervisor.stop_all()
    for _name, process in supervisor.children:
        assert process.returncode is not None
