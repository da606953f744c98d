"""The embedded PostgreSQL and Redis (devtools.stack.embedded).

Nothing here stops a service it did not start: the embedded servers run in temporary folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import environ
import psycopg
import redis

from devtools.stack import embedded, network


def test_forget_dead_handles_keeps_live_pids(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    handles = tmp_path / ".handle_pids.json"
    handles.write_text(json.dumps([os.getpid(), dead.pid]))
    embedded.forget_dead_handles(tmp_path)
    assert json.loads(handles.read_text()) == [os.getpid()]


def test_embedded_redis_serves_tcp_and_stops(tmp_path: Path) -> None:
    server = embedded.start_embedded_redis(tmp_path / "redis", persist=False)
    try:
        client = redis.Redis.from_url(server.url(1))
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    finally:
        server.stop()
    assert server.process.returncode is not None
    assert not network.port_open("127.0.0.1", server.port)


def test_embedded_postgres_serves_a_created_database_and_stops() -> None:
    # Not tmp_path: as root, pgserver opens the path to its data for its own system user,
    # and every pytest session closes /tmp/pytest-of-root again (mode 0700).
    parent = Path(tempfile.mkdtemp(prefix="flotilla-stack-test-"))
    try:
        server = embedded.start_embedded_postgres(parent / "pg")
        try:
            url = server.url("flotilla")
            assert environ.Env.db_url_config(url)["OPTIONS"]["host"]
            assert network.ensure_database(url) is True
            with psycopg.connect(url) as conn:
                row = conn.execute("SHOW server_version_num").fetchone()
            assert row is not None
            assert int(row[0]) >= 160000
        finally:
            server.stop()
        # A clean shutdown removes postmaster.pid (the process may linger as a zombie).
        assert not (server.pgdata / "postmaster.pid").exists()
    finally:
        shutil.rmtree(parent, ignore_errors=True)
