"""Shared pieces of the benchmarks: scratch databases, real server/worker processes, load, figures.

* Databases: a scratch database per benchmark on the PostgreSQL server of ``DATABASE_URL`` (or
  127.0.0.1:5432 as ``postgres``), created, migrated and dropped here; never the project's own.
* Redis: the broker/cache of the processes started here is one of the Redis databases 8..15,
  claimed with the same key the test suite's worker fixture uses, so a benchmark never consumes
  (or feeds) another session's tasks.
* Processes: ``Server`` is the real ``gunicorn -c config/gunicorn.conf.py`` (``N`` gthread workers
  × ``T`` threads) and ``Worker`` a real ``celery -A config worker`` process, both with the
  production settings module (DEBUG off), no access log.
* Load: ``run_load`` is a closed-loop HTTP/1.1 keep-alive client on asyncio streams (no
  dependency): ``connections`` connections each send one request, read the whole answer and send
  the next, for at most ``duration`` seconds or until the work runs out. Loopback only.
* Figures: percentiles, median of runs, CPU seconds per process from ``/proc``, peak RSS, tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
BIN = PYTHON.parent
HOST = "127.0.0.1"
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CLAIM_KEY = "flotilla:test-broker-claim"  # shared with tests/fixtures/celery_worker.py
CLAIMABLE_REDIS_DBS = range(8, 16)
CLAIM_TTL = 6 * 3600
SECRET_KEY = "flotilla-bench-secret-key-not-for-production"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)  # noqa: T201 - a CLI script


def say(message: str = "") -> None:
    print(message, flush=True)  # noqa: T201 - a CLI script


# ------------------------------------------------------------------ databases


def database_url(name: str) -> str:
    """``DATABASE_URL`` (or the local default) with its database name replaced by ``name``."""
    parts = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def psycopg_dsn(name: str) -> str:
    parts = urlsplit(database_url(name))
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))


def admin_execute(statement: str) -> None:
    import psycopg

    with psycopg.connect(psycopg_dsn("postgres"), autocommit=True) as connection:
        connection.execute(statement)


def create_database(name: str) -> None:
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scratch_name(base: str) -> str:
    """``<base>_<pid>``: concurrent runs (another session's smoke test) never share a database.

    Databases of earlier runs of ``base`` whose process is gone (killed mid-way) are dropped.
    """
    import psycopg

    with psycopg.connect(psycopg_dsn("postgres"), autocommit=True) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                [base.replace("_", "\\_") + "\\_%"],
            )
        ]
    for name in names:
        suffix = name[len(base) + 1 :]
        if suffix.isdigit() and not Path(f"/proc/{suffix}").exists():
            drop_database(name)
    return f"{base}_{os.getpid()}"


def server_versions() -> dict[str, str]:
    import psycopg

    with psycopg.connect(psycopg_dsn("postgres"), autocommit=True) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    postgres = row[0] if row else "?"
    redis_version = "?"
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
        redis_version = client.info("server")["redis_version"]
        client.close()
    return {"postgresql": postgres, "redis": redis_version}


# ------------------------------------------------------------------ redis broker database


@dataclass
class RedisClaim:
    """One Redis database (8..15) held for this benchmark's broker and cache."""

    url: str
    token: str
    client: Any = field(repr=False)

    def release(self) -> None:
        with contextlib.suppress(Exception):
            if self.client.get(CLAIM_KEY) == self.token.encode():
                self.client.flushdb()
        self.client.close()


def claim_redis() -> RedisClaim:
    import redis

    base = urlsplit(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    token = f"bench-{uuid.uuid4().hex}"
    for db in CLAIMABLE_REDIS_DBS:
        url = urlunsplit((base.scheme, base.netloc, f"/{db}", base.query, ""))
        client = redis.Redis.from_url(url)
        if client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_TTL):
            for key in client.scan_iter(count=1000):
                if key != CLAIM_KEY.encode():
                    client.delete(key)
            return RedisClaim(url=url, token=token, client=client)
        client.close()
    raise RuntimeError(f"no free Redis database among {list(CLAIMABLE_REDIS_DBS)}")


# ------------------------------------------------------------------ environment, Django


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def bench_env(
    database: str, redis_url: str, work: Path, **extra: str
) -> dict[str, str]:
    """Environment of every process of a benchmark: production settings, DEBUG off."""
    media = work / "media"
    media.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url(database),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "FLOTILLA_MEDIA_ROOT": str(media),
        # Production settings require it; the server's own environment names its real port.
        "FLOTILLA_PUBLIC_URL": f"http://{HOST}",
        "FLOTILLA_ACCESS_LOG": "",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process with the benchmark's environment (after ``migrate``)."""
    for key in (
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "DJANGO_LOG_LEVEL",
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "FLOTILLA_MEDIA_ROOT",
        "FLOTILLA_PUBLIC_URL",
    ):
        os.environ[key] = env[key]
    import django

    django.setup()


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py`` in a subprocess; its stdout."""
    result = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def migrate(env: dict[str, str]) -> None:
    manage(env, "migrate", "--noinput")


def read_tokens(path: Path) -> dict[str, str]:
    """``<device_id> <token>`` lines (written by ``generate_fleet --tokens``)."""
    tokens = {}
    with path.open() as lines:
        for line in lines:
            device_id, token = line.split()
            tokens[device_id] = token
    return tokens


# ------------------------------------------------------------------ /proc


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except FileNotFoundError:
        return []


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as comm:
            if comm.read().strip() == "postgres":
                pids.append(int(entry))
    return pids


class CpuMeter:
    """CPU seconds spent by groups of processes between ``start()`` and ``stop()``."""

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self.groups = groups
        self.before: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self._started = 0.0

    def _sample(self) -> dict[str, dict[int, float]]:
        return {
            name: {pid: cpu_seconds(pid) for pid in pids()}
            for name, pids in self.groups.items()
        }

    def start(self) -> None:
        self.before = self._sample()
        self._started = time.perf_counter()

    def stop(self) -> dict[str, float]:
        self.wall = time.perf_counter() - self._started
        after = self._sample()
        self.used = {
            name: sum(
                seconds - self.before[name].get(pid, 0.0)
                for pid, seconds in after[name].items()
            )
            for name in self.groups
        }
        return self.used


@dataclass
class MemorySampler:
    """Peak RSS of a process and its children, sampled in a background thread."""

    pid: int
    interval: float = 0.02
    peak_kib: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample_once(self) -> int:
        total = 0
        for pid in [self.pid, *children_of(self.pid)]:
            total += rss_kib(pid) or 0
        self.peak_kib = max(self.peak_kib, total)
        return total

    def start(self) -> None:
        self.sample_once()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            time.sleep(self.interval)

    def stop(self) -> float:
        """Stop; the peak in MB (10^6 bytes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.peak_kib * 1024 / 1e6


# ------------------------------------------------------------------ server and worker processes


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Server:
    """A running ``gunicorn -c config/gunicorn.conf.py``."""

    url: str
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid)


@contextlib.contextmanager
def server(
    env: dict[str, str], work: Path, *, workers: int = 2, threads: int = 8
) -> Iterator[Server]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    server_env = {
        **env,
        "FLOTILLA_BIND": f"{HOST}:{port}",
        "FLOTILLA_PUBLIC_URL": url,
        "FLOTILLA_WEB_WORKERS": str(workers),
        "FLOTILLA_WEB_THREADS": str(threads),
    }
    log_path = work / f"gunicorn-{port}.log"
    with log_path.open("wb") as server_log:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py"],
            cwd=PROJECT_ROOT,
            env=server_env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    if (
                        response.status == 200
                        and len(children_of(process.pid)) >= workers
                    ):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not become healthy in 60 s")
            time.sleep(0.1)
        yield Server(url=url, port=port, process=process, log_path=log_path)
    finally:
        _stop_process(process)


@dataclass
class Worker:
    """A running ``celery -A config worker`` (solo pool: one process, the one to measure)."""

    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def worker(env: dict[str, str], work: Path) -> Iterator[Worker]:
    log_path = work / f"celery-{uuid.uuid4().hex[:8]}.log"
    command = [
        str(BIN / "celery"), "-A", "config", "worker", "--pool", "solo", "-l", "INFO",
        "-n", f"flotilla-bench-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with log_path.open("wb") as worker_log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**env, "DJANGO_LOG_LEVEL": "INFO"},
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    handle = Worker(process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in handle.log_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{handle.log_text()}")
            time.sleep(0.1)
        yield handle
    finally:
        _stop_process(process)


# ------------------------------------------------------------------ HTTP load


def http_request(
    method: str,
    path: str,
    *,
    port: int,
    token: str | None = None,
    body: Any = None,
) -> bytes:
    """One HTTP/1.1 keep-alive request, ready to write."""
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines.append("Content-Type: application/json")
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    header_lines = head.decode("latin-1").split("\r\n")
    status = int(header_lines[0].split(" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in header_lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(length) if length else b""
    return status, body, close


@dataclass
class LoadResult:
    """What one load run measured."""

    label: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    failures: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000

    def unexpected(self, expected: Iterable[int]) -> int:
        allowed = set(expected)
        return sum(n for code, n in self.statuses.items() if code not in allowed)


Session = Sequence[bytes]


async def _connection_loop(
    port: int,
    next_session: Callable[[], Session | None],
    result: LoadResult,
    deadline: float,
    on_response: Callable[[int, bytes], None] | None,
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < deadline:
            session = next_session()
            if session is None:
                return
            for request in session:
                started = time.perf_counter()
                writer.write(request)
                try:
                    status, body, close = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    result.failures.append(repr(exc))
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
                    continue
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] += 1
                if on_response is not None:
                    on_response(status, body)
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
    finally:
        writer.close()


def run_load(
    label: str,
    *,
    port: int,
    sessions: Iterator[Session],
    connections: int,
    duration: float,
    on_response: Callable[[int, bytes], None] | None = None,
    cpu_groups: Mapping[str, Callable[[], Iterable[int]]] | None = None,
) -> LoadResult:
    """Closed loop: each connection runs one session (requests in order) after another.

    Stops after ``duration`` seconds or when ``sessions`` is exhausted, whichever is first.
    """
    result = LoadResult(label=label)

    def next_session() -> Session | None:
        return next(sessions, None)

    async def main() -> None:
        deadline = time.perf_counter() + duration
        await asyncio.gather(
            *(
                _connection_loop(port, next_session, result, deadline, on_response)
                for _ in range(connections)
            )
        )

    meter = CpuMeter(cpu_groups or {})
    meter.start()
    cpu_before = time.process_time()
    started = time.perf_counter()
    asyncio.run(main())
    result.elapsed = time.perf_counter() - started
    result.client_cpu = time.process_time() - cpu_before
    result.cpu = meter.stop()
    return result


def random_sessions(requests: Sequence[bytes], seed: int = 1) -> Iterator[Session]:
    """An endless stream of single-request sessions, each a random pick (with replacement)."""
    rng = random.Random(seed)
    while True:
        yield (rng.choice(requests),)


# ------------------------------------------------------------------ figures


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else 0.0


@dataclass
class Row:
    figure: str
    value: str
    goal: str = ""
    verdict: str = ""


def print_table(title: str, rows: Sequence[Row]) -> None:
    """A Markdown table (pastes into docs/benchmarks.md as is)."""
    say()
    say(f"### {title}")
    say()
    say("| figure | value | goal | |")
    say("| --- | ---: | --- | --- |")
    for row in rows:
        say(f"| {row.figure} | {row.value} | {row.goal} | {row.verdict} |")
    say()


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def machine_line() -> str:
    memory = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        memory = f"{int(meminfo.readline().split()[1]) / 1024**2:.0f} GiB"
    versions = server_versions()
    return (
        f"{os.cpu_count()} cores, {memory}, PostgreSQL {versions['postgresql']}, "
        f"Redis {versions['redis']}, Python {sys.version.split()[0]}"
    )


@contextlib.contextmanager
def scratch(database: str, *, keep: bool = False) -> Iterator[tuple[Path, RedisClaim]]:
    """A scratch database (created empty, dropped after unless ``keep``), a work dir and a Redis claim."""
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix=f"{database}-"))
    claim = claim_redis()
    create_database(database)
    try:
        yield work, claim
    finally:
        claim.release()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not keep:
            drop_database(database)
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept database {database} and {work}")
