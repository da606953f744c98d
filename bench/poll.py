"""Device poll throughput: ``POST …/v2/deployments/device/deployments/next`` vs the bare device endpoint.

Usage (from the project root; PostgreSQL and Redis as for the tests):

    .venv/bin/python -m bench.poll [--devices 100000] [--deployments 50] [--dynamic 10]
        [--connections 32] [--duration 10] [--runs 3] [--workers 2] [--threads 8] [--keep]

``--devices 300 --deployments 5 --dynamic 1 --duration 1 --runs 1`` is a smoke run.

What it does:
1. scratch database ``flotilla_bench_poll_<pid>``: ``generate_fleet`` creates the fleet (accepted devices
   with inventory and tokens, ``--idle`` of them targeted by nothing) with ``--deployments`` active
   deployments, ``--dynamic`` of them dynamic, all expanded / evaluated;
2. starts the real server (gunicorn, ``config.settings.production``, DEBUG off, ``--workers`` ×
   ``--threads``) and drives it from this process on loopback with ``--connections`` keep-alive
   connections (closed loop), each variant for ``--duration`` seconds, ``--runs`` times interleaved:

   * ``ping``: ``POST /api/devices/v1/flotilla/ping`` (device-token auth, one query) — the limit;
   * ``next, first poll``: devices that never polled, in random order, each once (the admission
     path: find the oldest deployment targeting the device, admit it, assign an artifact) → 200;
   * ``next, repeat poll``: random devices that were admitted already (resume path) → 200;
   * ``next, nothing to do``: random devices no deployment targets → 204;

   every request carries the device's real ``device_provides`` (its inventory, so no inventory write);
3. prints requests/s, p50 and p99 per variant (median of the runs), the ratio to ``ping``, the CPU
   seconds per request of the web workers and of PostgreSQL (all its processes: other activity on
   the machine counts too) and of this client;
4. profiles one request of each kind in this process (Django test client, same database): queries
   and their time, the slowest SELECT's planning vs execution time, and CPU by package (cProfile).

Exit status 0 when every ``next`` variant reaches ≥ 50 % of the ``ping`` rate with p99 ≤ 100 ms
(``--smoke`` always 0 if the requests succeeded).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import common

DATABASE = "flotilla_bench_poll"
PING = "/api/devices/v1/flotilla/ping"
NEXT = "/api/devices/v2/deployments/device/deployments/next"
GOAL_RATIO = 0.5
GOAL_P99_MS = 100.0


def _inventory(device_ids: list[str]) -> dict[str, dict[str, Any]]:
    from devices_app.models import Device

    return {
        str(pk): inventory
        for pk, inventory in Device.objects.filter(pk__in=device_ids).values_list(
            "id", "inventory"
        )
    }


def _targeted_devices() -> set[str]:
    """Devices that some deployment targets: a static target row or a filter membership."""
    from deployments_app.models import DeviceDeployment
    from devices_app.models import FilterMembership

    static = DeviceDeployment.objects.values_list("device_id", flat=True)
    dynamic = FilterMembership.objects.values_list("device_id", flat=True)
    return {str(pk) for pk in static.union(dynamic)}


def _provides(inventory: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_provides": {
            "artifact_name": inventory["artifact_name"],
            "device_type": inventory["device_type"],
        }
    }


class Fleet:
    """Tokens, request bodies and the device pools of the variants."""

    def __init__(
        self, tokens: dict[str, str], port: int, *, reserve: int = 0, seed: int = 7
    ) -> None:
        self.tokens = tokens
        self.port = port
        self.inventory = _inventory(list(tokens))
        ids = sorted(tokens)
        random.Random(seed).shuffle(ids)
        targeted = _targeted_devices()
        self.idle = [d for d in ids if d not in targeted]
        self.targeted = [d for d in ids if d in targeted]
        # Never-polled devices kept out of the load for the in-process profile of a first poll.
        split = max(0, len(self.targeted) - reserve)
        self._fresh = iter(self.targeted[:split])
        self._reserved = iter(self.targeted[split:])
        self.admitted: list[str] = []

    def request(self, path: str, device_id: str) -> bytes:
        return common.http_request(
            "POST",
            path,
            port=self.port,
            token=self.tokens[device_id],
            body=_provides(self.inventory[device_id]),
        )

    def take_fresh(self) -> str | None:
        device_id = next(self._fresh, None)
        if device_id is not None:
            self.admitted.append(device_id)
        return device_id

    def take_reserved(self) -> str | None:
        device_id = next(self._reserved, None)
        if device_id is not None:
            self.admitted.append(device_id)
        return device_id

    def ping_sessions(self) -> Iterator[common.Session]:
        requests = [self.request(PING, d) for d in self.tokens]
        return common.random_sessions(requests, seed=11)

    def first_poll_sessions(self) -> Iterator[common.Session]:
        while (device_id := self.take_fresh()) is not None:
            yield (self.request(NEXT, device_id),)

    def repeat_sessions(self) -> Iterator[common.Session]:
        rng = random.Random(13)
        cache: dict[str, bytes] = {}
        while self.admitted:
            device_id = rng.choice(self.admitted)
            if device_id not in cache:
                cache[device_id] = self.request(NEXT, device_id)
            yield (cache[device_id],)

    def idle_sessions(self) -> Iterator[common.Session]:
        return common.random_sessions(
            [self.request(NEXT, d) for d in self.idle], seed=17
        )


VARIANTS = {
    "ping": ("ping", {200}),
    "first": ("next, first poll (admission)", {200}),
    "repeat": ("next, repeat poll (resume)", {200}),
    "idle": ("next, nothing to do (204)", {204}),
}


def run_variants(
    fleet: Fleet, server: common.Server, args: argparse.Namespace
) -> dict[str, list[common.LoadResult]]:
    results: dict[str, list[common.LoadResult]] = defaultdict(list)
    cpu_groups = {
        "web": server.worker_pids,
        "postgres": common.postgres_pids,
    }
    sessions = {
        "ping": fleet.ping_sessions,
        "first": fleet.first_poll_sessions,
        "repeat": fleet.repeat_sessions,
        "idle": fleet.idle_sessions,
    }
    # Warm up every worker and thread (imports, connections) before measuring.
    common.run_load(
        "warm-up",
        port=server.port,
        sessions=fleet.ping_sessions(),
        connections=args.connections,
        duration=min(2.0, args.duration),
    )
    for run in range(1, args.runs + 1):
        for key, (label, expected) in VARIANTS.items():
            if key == "idle" and not fleet.idle:
                continue
            spies = _start_py_spy(server, key, args) if run == 1 else []
            result = common.run_load(
                label,
                port=server.port,
                sessions=sessions[key](),
                connections=args.connections,
                duration=args.duration,
                cpu_groups=cpu_groups,
            )
            if spies:
                _report_py_spy(label, spies)
            bad = result.unexpected(expected)
            common.log(
                f"run {run} {label}: {result.requests} requests, {result.rate:.0f}/s, "
                f"p50 {result.percentile_ms(50):.1f} ms, p99 {result.percentile_ms(99):.1f} ms, "
                f"statuses {dict(result.statuses)}"
            )
            if bad or result.failures:
                raise RuntimeError(
                    f"{label}: unexpected answers {dict(result.statuses)} {result.failures[:3]}; "
                    f"see {server.log_path}"
                )
            results[key].append(result)
    return results


def _start_py_spy(
    server: common.Server, key: str, args: argparse.Namespace
) -> list[tuple[Any, Path]]:
    """``py-spy record`` on every web worker for this variant (``--py-spy``; run 1 only)."""
    if not args.py_spy or key == "ping" and not args.py_spy_ping:
        return []
    spy = shutil.which("py-spy") or str(common.BIN / "py-spy")
    if not Path(spy).exists():
        common.log("--py-spy: py-spy is not installed (pip install py-spy)")
        return []
    spies = []
    for pid in server.worker_pids():
        out = Path(args.py_spy) / f"{key}-{pid}.txt"
        process = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--duration", str(int(args.duration)),
             "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        spies.append((process, out))
    time.sleep(0.5)  # let py-spy attach before the load starts
    return spies


# Frames whose inclusive share tells where a request's time goes (py-spy frame text contains these).
SPY_MARKERS = {
    "device-token authentication": "DeviceTokenAuthentication.authenticate ",
    "connection health check (SELECT 1)": "close_if_health_check_failed ",
    "ORM: compile SQL": "SQLCompiler.as_sql ",
    "ORM: build model instances": "Model.from_db ",
    "driver: execute + wait for PostgreSQL": "Cursor.execute (psycopg/",
    "transaction commit": "Atomic.__exit__ ",
    "JSON parse (request)": "JSONParser.parse ",
    "JSON render (response)": "JSONRenderer.render ",
    "task dispatch (celery/kombu)": "Task.apply_async ",
}


def _report_py_spy(label: str, spies: list[tuple[Any, Path]]) -> None:
    """Samples of the web workers' threads: self time by package, inclusive time by frame."""
    by_package: dict[str, int] = defaultdict(int)
    inclusive: dict[str, int] = defaultdict(int)
    markers: dict[str, int] = defaultdict(int)
    total = 0
    for process, out in spies:
        process.wait(timeout=120)
        if not out.exists():
            continue
        for line in out.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            total += count
            leaf = frames[-1]
            filename = "/" + leaf[leaf.rfind("(") + 1 :]
            by_package[_package(filename, leaf)] += count
            for name, marker in SPY_MARKERS.items():
                if any(marker in frame for frame in frames):
                    markers[name] += count
            for frame in dict.fromkeys(frames):
                if "_app/" in frame or "config/" in frame:
                    where = frame[frame.rfind("/") + 1 :].rstrip(")")
                    inclusive[f"{frame.split(' (')[0]} {where}"] += count
    if not total:
        return
    common.say()
    common.say(f"py-spy, web worker threads under load, {label} ({total} samples):")
    for package, count in sorted(by_package.items(), key=lambda kv: -kv[1])[:10]:
        common.say(f"    self  {package:<40} {count / total * 100:5.1f} %")
    for name, count in sorted(markers.items(), key=lambda kv: -kv[1]):
        common.say(f"    incl  {name:<40} {count / total * 100:5.1f} %")
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:12]:
        common.say(f"    incl  {frame:<60} {count / total * 100:5.1f} %")


def summarize(
    results: dict[str, list[common.LoadResult]], smoke: bool
) -> tuple[list[common.Row], bool]:
    rows: list[common.Row] = []
    ping_rate = common.median(r.rate for r in results["ping"])
    ok = True
    for key, (label, _) in VARIANTS.items():
        runs = results.get(key)
        if not runs:
            continue
        rate = common.median(r.rate for r in runs)
        p50 = common.median(r.percentile_ms(50) for r in runs)
        p99 = common.median(r.percentile_ms(99) for r in runs)
        requests = sum(r.requests for r in runs)
        web = sum(r.cpu.get("web", 0.0) for r in runs) / requests * 1000
        pg = sum(r.cpu.get("postgres", 0.0) for r in runs) / requests * 1000
        client = sum(r.client_cpu for r in runs) / requests * 1000
        rows.append(common.Row(f"{label}: requests/s", f"{rate:.0f}"))
        rows.append(common.Row(f"{label}: p50 / p99", f"{p50:.1f} / {p99:.1f} ms"))
        rows.append(
            common.Row(
                f"{label}: CPU per request web / postgres / client",
                f"{web:.1f} / {pg:.1f} / {client:.1f} ms",
            )
        )
        if key != "ping":
            ratio = rate / ping_rate if ping_rate else 0.0
            met = ratio >= GOAL_RATIO and p99 <= GOAL_P99_MS
            ok = ok and met
            rows.append(
                common.Row(
                    f"{label}: rate / ping",
                    f"{ratio:.2f}",
                    f"≥ {GOAL_RATIO:.2f}, p99 ≤ {GOAL_P99_MS:.0f} ms",
                    "" if smoke else common.verdict(met),
                )
            )
    return rows, ok


# ------------------------------------------------------------------ in-process profile


def _package(filename: str, function: str) -> str:
    if ("psycopg" in filename and "wait" in function) or any(
        word in function for word in ("select.", "epoll", "'poll'", "recv")
    ):
        return "waiting on PostgreSQL"
    for marker, name in (
        ("/django/db/", "django ORM (db)"),
        ("/psycopg", "psycopg"),
        ("/rest_framework/", "DRF"),
        ("/jwt/", "PyJWT"),
        ("/django/", "django (other)"),
        ("/deployments_app/", "deployments_app"),
        ("/devices_app/", "devices_app"),
        ("/config/", "config"),
        ("/json/", "json"),
        ("/gunicorn/", "gunicorn"),
        ("/whitenoise/", "whitenoise"),
        ("/threading.py", "threads/queues"),
        ("/concurrent/", "threads/queues"),
        ("/celery/", "celery/kombu/redis"),
        ("/kombu/", "celery/kombu/redis"),
        ("/redis/", "celery/kombu/redis"),
    ):
        if marker in filename:
            return name
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins/C"
    return "other"


def profile_in_process(fleet: Fleet, samples: int) -> None:
    """Queries and CPU of single requests, in this process through the Django test client."""
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST=common.HOST)
    kinds: dict[str, tuple[str, Any]] = {
        "ping": (PING, lambda: random.choice(list(fleet.tokens))),
        "first": (NEXT, fleet.take_reserved),
        "repeat": (NEXT, lambda: random.choice(fleet.admitted)),
        "idle": (NEXT, lambda: random.choice(fleet.idle) if fleet.idle else None),
    }
    common.say()
    common.say(
        f"### Profile of single requests (in process, Django test client, {samples} each)"
    )
    common.say()
    common.say(
        "| request | status | queries | SQL time (driver round trips) | whole request | outside SQL |"
    )
    common.say("| --- | --- | ---: | ---: | ---: | ---: |")
    details: dict[str, list[tuple[float, str, Any]]] = {}
    for key, (path, pick) in kinds.items():
        totals, sqls, counts, statuses = [], [], [], set()
        for _ in range(samples):
            device_id = pick()
            if device_id is None:
                break
            queries: list[tuple[float, str, Any]] = []

            def timed(
                execute: Any, sql: str, params: Any, many: bool, context: Any
            ) -> Any:
                started = time.perf_counter()
                try:
                    return execute(sql, params, many, context)
                finally:
                    queries.append((time.perf_counter() - started, sql, params))  # noqa: B023

            body = json.dumps(_provides(fleet.inventory[device_id]))
            with connection.execute_wrapper(timed):
                started = time.perf_counter()
                response = client.post(
                    path,
                    data=body,
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {fleet.tokens[device_id]}",
                )
                totals.append(time.perf_counter() - started)
            statuses.add(response.status_code)
            sqls.append(sum(q[0] for q in queries))
            counts.append(len(queries))
            details[key] = queries
        if not totals:
            continue
        total, sql = common.median(totals) * 1000, common.median(sqls) * 1000
        common.say(
            f"| {VARIANTS[key][0]} | {sorted(statuses)} | {common.median(counts):.0f} | "
            f"{sql:.1f} ms | {total:.1f} ms | {total - sql:.1f} ms |"
        )
    for key in ("first", "repeat"):
        timings = details.get(key)
        if not timings:
            continue
        common.say()
        common.say(f"Queries of one {VARIANTS[key][0]} (ms, in order):")
        common.say()
        for seconds, statement, _ in timings:
            common.say(
                f"    {seconds * 1000:6.2f}  {' '.join(statement.split())[:150]}"
            )
    _explain_slowest(details.get("first", []))
    for key in ("first", "repeat"):
        _cprofile(fleet, client, key, kinds[key], samples)


def _explain_slowest(queries: list[tuple[float, str, Any]]) -> None:
    """Planning vs execution time of the slowest read-only statements (re-run with EXPLAIN ANALYZE)."""
    from django.db import connection

    def read_only(sql: str) -> bool:
        words = sql.upper().split()
        return words[0] in ("SELECT", "WITH") and not {
            "INSERT",
            "UPDATE",
            "DELETE",
        } & set(words)

    selects = sorted(
        (q for q in queries if read_only(q[1])), key=lambda q: q[0], reverse=True
    )[:3]
    if not selects:
        return
    common.say()
    common.say("Slowest read-only statements of that first poll (EXPLAIN ANALYZE):")
    common.say()
    for _, sql, params in selects:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
        common.say(
            f"    planning {plan['Planning Time']:.2f} ms, execution {plan['Execution Time']:.2f} ms: "
            f"{' '.join(sql.split())[:120]}"
        )


def _cprofile(
    fleet: Fleet, client: Any, key: str, kind: tuple[str, Any], samples: int
) -> None:
    path, pick = kind
    profiler = cProfile.Profile()
    done = 0
    for _ in range(samples):
        device_id = pick()
        if device_id is None:
            break
        body = json.dumps(_provides(fleet.inventory[device_id]))
        profiler.enable()
        client.post(
            path,
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {fleet.tokens[device_id]}",
        )
        profiler.disable()
        done += 1
    if not done:
        return
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[_package(filename, function)] += tottime
        total += tottime
    common.say()
    common.say(
        f"CPU of one {VARIANTS[key][0]} by package (cProfile own time, {done} requests, "
        f"{total / done * 1000:.1f} ms per request under the profiler):"
    )
    common.say()
    for package, seconds in sorted(by_package.items(), key=lambda kv: -kv[1]):
        common.say(
            f"    {package:<22} {seconds / done * 1000:6.2f} ms  {seconds / total * 100:5.1f} %"
        )


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--deployments", type=int, default=50)
    parser.add_argument("--dynamic", type=int, default=10)
    parser.add_argument(
        "--idle", type=int, default=None, help="untargeted devices (default 5 %%)"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--profile-samples", type=int, default=30, help="0: skip the profile"
    )
    parser.add_argument(
        "--py-spy",
        metavar="DIR",
        help="record the web workers with py-spy during run 1 (raw stacks to DIR)",
    )
    parser.add_argument(
        "--py-spy-ping", action="store_true", help="with --py-spy: ping too"
    )
    parser.add_argument(
        "--settings",
        help="settings module of the server (default config.settings.production), e.g. a "
        "module on PYTHONPATH that imports it and changes one thing",
    )
    parser.add_argument("--smoke", action="store_true", help="no verdict on timings")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    idle = args.idle if args.idle is not None else max(1, args.devices // 20)

    common.log(
        f"machine: {common.machine_line()}, load average {os.getloadavg()[0]:.1f}"
    )
    database = common.scratch_name(DATABASE)
    with common.scratch(database, keep=args.keep) as (work, claim):
        env = common.bench_env(database, claim.url, work)
        server_env = dict(env)
        if args.settings:
            server_env["DJANGO_SETTINGS_MODULE"] = args.settings
        common.migrate(env)
        tokens_path = work / "tokens.txt"
        started = time.perf_counter()
        output = common.manage(
            env, "generate_fleet",
            "--devices", str(args.devices), "--deployments", str(args.deployments),
            "--dynamic", str(args.dynamic), "--idle", str(idle),
            "--tokens", str(tokens_path),
        )  # fmt: skip
        generated_s = time.perf_counter() - started
        for line in output.strip().splitlines():
            common.log(f"generate_fleet: {line}")
        common.setup_django(env)
        tokens = common.read_tokens(tokens_path)
        with common.server(
            server_env, work, workers=args.workers, threads=args.threads
        ) as server:
            # The profile takes 2 x samples first polls (query log, then cProfile).
            fleet = Fleet(tokens, server.port, reserve=2 * args.profile_samples)
            common.log(
                f"server {server.url}: {args.workers} workers × {args.threads} threads; "
                f"{len(fleet.targeted)} targeted, {len(fleet.idle)} idle devices; "
                f"{args.connections} connections, {args.runs} × {args.duration:.0f} s per variant"
            )
            results = run_variants(fleet, server, args)
        rows, ok = summarize(results, args.smoke)
        rows.insert(
            0,
            common.Row(
                f"generate_fleet ({args.devices} devices, tokens, {args.deployments} deployments)",
                f"{generated_s:.1f} s",
                "well under 60 s",
            ),
        )
        common.print_table(
            f"Device poll, {args.devices} devices, {args.deployments} deployments "
            f"({args.dynamic} dynamic), {args.connections} connections, "
            f"median of {args.runs} × {args.duration:.0f} s",
            rows,
        )
        if args.profile_samples:
            profile_in_process(fleet, args.profile_samples)
    return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
