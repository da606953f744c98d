"""Where PostgreSQL and Redis come from, and the checkout's own secret key."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from devtools.stack import DATA_DIR, LOCAL_HOST, say, truthy
from devtools.stack.embedded import start_embedded_postgres, start_embedded_redis
from devtools.stack.network import (
    ensure_database,
    port_open,
    postgres_answers,
    redis_answers,
    redis_url,
    tcp_database_url,
)

LOCAL_POSTGRES_PORT = 5432
LOCAL_REDIS_PORT = 6379
LOCAL_POSTGRES_PROBE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_NAME = "flotilla"
SECRET_KEY_FILE = "secret_key"

Source = Literal["env", "local", "embedded"]
Purpose = Literal["run", "test"]
REDIS_DB: dict[Purpose, int] = {"run": 0, "test": 1}


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


def local_postgres_reachable() -> bool:
    return port_open(LOCAL_HOST, LOCAL_POSTGRES_PORT) and postgres_answers(
        LOCAL_POSTGRES_PROBE_URL
    )


def local_redis_reachable() -> bool:
    return redis_answers(LOCAL_HOST, LOCAL_REDIS_PORT)


def checkout_secret_key(data_dir: Path = DATA_DIR) -> str:
    """This checkout's Django secret key: random, made on first use, kept in ``data_dir``.

    ``data_dir`` is git-ignored, so the key is never committed; the file is readable by its
    owner only. Written aside and linked into place, so two first runs at once agree on one
    key and neither reads a half-written file.
    """
    path = data_dir / SECRET_KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, draft = tempfile.mkstemp(dir=data_dir, prefix=".secret_key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(50) + "\n")
            with contextlib.suppress(FileExistsError):  # another run was first
                os.link(draft, path)
        finally:
            os.unlink(draft)
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty; delete it to get a new key")
    return key


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
                say(f"while stopping: {exc!r}")

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
                say(f"could not check/create the database of DATABASE_URL: {exc}")
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
        say(f"embedded PostgreSQL ready in {elapsed:.1f} s ({postgres.pgdata})")
    if ensure_database(stack.database_url):
        say(f"created database {DATABASE_NAME}")


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
        say(f"embedded Redis ready in {elapsed:.1f} s on {LOCAL_HOST}:{redis.port}")
