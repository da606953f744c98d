"""Expansion of a static-group deployment: create request → fully expanded, vs a plain INSERT … SELECT.

Usage (from the project root; PostgreSQL and Redis as for the tests):

    .venv/bin/python -m bench.expansion [--sizes 100000,1000000] [--runs 3] [--keep]

``--sizes 2000 --runs 1`` is a smoke run.

What it does, per size N (a fresh scratch database ``flotilla_bench_expansion_<pid>`` each):
1. ``generate_fleet --devices N --groups 1``: N accepted devices, all in one static group, and
   one release (artifact rows) to deploy;
2. starts the real server (gunicorn, production settings, DEBUG off, one worker process) and a
   real Celery worker (``--pool solo``: one process, whose RSS is sampled every 20 ms), and
   warms both up with one unmeasured create and expansion (of one device);
3. per run, in the same run on the same data:
   * baseline: the plain statement ``INSERT INTO <device deployment table> SELECT …`` of the same
     rows (same target SQL, same table, indexes and constraints) for a scratch deployment row;
   * ``POST /api/management/v1/deployments/deployments/group/<group>`` through the server (its
     latency), then the time until ``Deployment.expanded_at`` is set, measured from the request
     (wall) and as ``expanded_at - created`` (the worker's part, queueing included);
   * both sets of rows are deleted again (and the table vacuumed) before the next run;
4. prints the medians, the ratio expansion / baseline (goal ≤ 2), rows per second of the worker,
   its peak RSS (goal ≤ 300 MB) and the create latency (goal ≤ 200 ms).

Exit status 0 when every goal is met (``--smoke``: when every expansion completed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
import uuid
from typing import Any

from bench import common

DATABASE = "flotilla_bench_expansion"
PREFIX = "expansion"
GROUP = f"{PREFIX}-g00"  # generate_fleet's name for its first group
GOAL_RATIO = 2.0
GOAL_RSS_MB = 300.0
GOAL_CREATE_MS = 200.0


def _post(url: str, token: str, body: Any) -> tuple[int, float]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        return response.status, time.perf_counter() - started


def _sql(statement: str, params: list[Any] | None = None) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchone() if cursor.description else cursor.rowcount


def _baseline(release: str) -> tuple[float, int]:
    """A plain INSERT … SELECT of the same rows into the same table; returns (seconds, rows)."""
    from django.utils import timezone

    from deployments_app.models import Deployment, DeviceDeployment
    from devices_app.services.groups import group_members_as_of_sql

    now = timezone.now()
    scratch = Deployment.objects.create(
        name=f"baseline-{uuid.uuid4().hex[:8]}",
        artifact_name=release,
        created=now,
        status="finished",
        finished=now,
        target_kind="group",
        group_name=GROUP,
        constructor_checksum=uuid.uuid4().hex,
        expanded_at=now,
    )
    targets, params = group_members_as_of_sql(group_name=GROUP, as_of=now)
    started = time.perf_counter()
    rows = _sql(
        f"""
        INSERT INTO {DeviceDeployment._meta.db_table}
            (id, deployment_id, device_id, status, substate, created, attempts, has_log)
        SELECT gen_random_uuid(), %s::uuid, t.device_id, 'pending', '', %s, 0, false
        FROM ({targets}) t
        """,
        [str(scratch.pk), now, *params],
    )
    seconds = time.perf_counter() - started
    _forget(scratch.pk)
    return seconds, rows


def _forget(deployment_id: Any) -> None:
    """Delete a deployment and its rows set-based, and vacuum, so the next run starts alike."""
    from deployments_app.models import Deployment, DeploymentPhase, DeviceDeployment

    for model, column in (
        (DeviceDeployment, "deployment_id"),
        (DeploymentPhase, "deployment_id"),
        (Deployment, "id"),
    ):
        _sql(
            f"DELETE FROM {model._meta.db_table} WHERE {column} = %s",
            [str(deployment_id)],
        )
    _sql(f"VACUUM ANALYZE {DeviceDeployment._meta.db_table}")


def _expand_through_server(
    url: str,
    token: str,
    release: str,
    run: int,
    timeout: float,
    *,
    warm_up: bool = False,
) -> dict[str, float]:
    from deployments_app.models import Deployment
    from devices_app.models import Device

    name = f"expansion-run-{run}-{uuid.uuid4().hex[:6]}"
    path = f"/api/management/v1/deployments/deployments/group/{GROUP}"
    body: dict[str, Any] = {"name": name, "artifact_name": release}
    if warm_up:  # one device: the same code paths in server and worker, nearly no rows
        device = Device.objects.values_list("id", flat=True).first()
        path = "/api/management/v1/deployments/deployments"
        body = {**body, "devices": [str(device)]}
    started = time.perf_counter()
    status, latency = _post(f"{url}{path}", token, body)
    if status != 201:
        raise RuntimeError(f"create answered {status}")
    deployment = Deployment.objects.get(name=name)
    deadline = time.monotonic() + timeout
    while deployment.expanded_at is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not expanded after {timeout:.0f} s")
        time.sleep(0.05)
        deployment.refresh_from_db()
    wall = time.perf_counter() - started
    worker = (deployment.expanded_at - deployment.created).total_seconds()
    count = deployment.device_count
    _forget(deployment.pk)
    return {"latency": latency, "wall": wall, "worker": worker, "rows": count}


def run_size(size: int, args: argparse.Namespace) -> tuple[list[common.Row], bool]:
    database = common.scratch_name(DATABASE)
    with common.scratch(database, keep=args.keep) as (work, claim):
        env = common.bench_env(database, claim.url, work)
        common.migrate(env)
        started = time.perf_counter()
        output = common.manage(
            env, "generate_fleet", "--devices", str(size), "--groups", "1",
            "--prefix", PREFIX,
        )  # fmt: skip
        for line in output.strip().splitlines():
            common.log(f"generate_fleet: {line}")
        common.setup_django(env)
        from django.contrib.auth import get_user_model

        from config.accounts.services.tokens import issue_user_token
        from deployments_app.management.commands.generate_fleet import create_releases

        _sql("VACUUM ANALYZE")
        release = create_releases(prefix=PREFIX, count=1)[0]
        user = get_user_model().objects.create_user(
            username="bench@example.com", email="bench@example.com", password="x" * 16
        )
        token = issue_user_token(user=user)
        common.log(f"{size} devices ready in {time.perf_counter() - started:.1f} s")

        baselines, results = [], []
        with (
            common.worker(env, work) as celery,
            common.server(env, work, workers=1) as web,
        ):
            # Warm-up: the first create and expansion load code and open connections.
            _expand_through_server(
                web.url, token, release, 0, timeout=args.timeout, warm_up=True
            )
            sampler = common.MemorySampler(celery.pid)
            sampler.start()
            idle_mb = sampler.peak_kib * 1024 / 1e6
            for run in range(1, args.runs + 1):
                seconds, rows = _baseline(release)
                baselines.append(seconds)
                result = _expand_through_server(
                    web.url, token, release, run, timeout=args.timeout
                )
                results.append(result)
                common.log(
                    f"N={size} run {run}: baseline INSERT … SELECT {rows} rows {seconds:.2f} s; "
                    f"expansion {result['rows']:.0f} rows: create {result['latency'] * 1000:.0f} ms, "
                    f"expanded after {result['wall']:.2f} s (worker {result['worker']:.2f} s)"
                )
                if rows != size or result["rows"] != size:
                    raise RuntimeError(
                        f"expected {size} rows, got {rows} / {result['rows']}"
                    )
            peak_mb = sampler.stop()

    baseline = common.median(baselines)
    wall = common.median(r["wall"] for r in results)
    worker = common.median(r["worker"] for r in results)
    latency_ms = common.median(r["latency"] for r in results) * 1000
    ratio = wall / baseline
    ok_ratio = ratio <= GOAL_RATIO
    ok_rss = peak_mb <= GOAL_RSS_MB
    ok_latency = latency_ms <= GOAL_CREATE_MS
    smoke = args.smoke
    table = [
        common.Row(f"N={size}: plain INSERT … SELECT (baseline)", f"{baseline:.2f} s"),
        common.Row(
            f"N={size}: create → expanded (wall; worker part)",
            f"{wall:.2f} s; {worker:.2f} s",
        ),
        common.Row(
            f"N={size}: expansion / baseline",
            f"{ratio:.2f}",
            f"≤ {GOAL_RATIO:.0f}",
            "" if smoke else common.verdict(ok_ratio),
        ),
        common.Row(
            f"N={size}: expansion rows per second (baseline)",
            f"{size / wall:,.0f} ({size / baseline:,.0f})",
        ),
        common.Row(
            f"N={size}: worker peak RSS (idle)",
            f"{peak_mb:.0f} MB ({idle_mb:.0f} MB)",
            f"≤ {GOAL_RSS_MB:.0f} MB",
            "" if smoke else common.verdict(ok_rss),
        ),
        common.Row(
            f"N={size}: create request latency",
            f"{latency_ms:.0f} ms",
            f"≤ {GOAL_CREATE_MS:.0f} ms",
            "" if smoke else common.verdict(ok_latency),
        ),
    ]
    return table, ok_ratio and ok_rss and ok_latency


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds to wait for one expansion"
    )
    parser.add_argument("--smoke", action="store_true", help="no verdict on timings")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    common.log(
        f"machine: {common.machine_line()}, load average {os.getloadavg()[0]:.1f}"
    )
    all_rows, ok = [], True
    for index, size in enumerate(sizes):
        if index:
            # Django is set up once per process; later sizes reuse it on a fresh database.
            from django.db import connections

            connections.close_all()
        rows, size_ok = run_size(size, args)
        all_rows += rows
        ok = ok and size_ok
    common.print_table(
        f"Expansion of a static-group deployment, median of {args.runs}", all_rows
    )
    return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
