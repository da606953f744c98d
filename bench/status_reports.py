"""Status reports: many devices of one deployment reporting downloading → installing → success at once.

Usage (from the project root; PostgreSQL and Redis as for the tests):

    .venv/bin/python -m bench.status_reports [--devices 1500] [--runs 3] [--connections 32]
        [--duration 10] [--workers 2] [--threads 8] [--keep]

``--devices 60 --runs 1 --duration 1`` is a smoke run.

What it does:
1. scratch database ``flotilla_bench_status_<pid>``: ``generate_fleet`` creates ``--devices`` × ``--runs``
   accepted devices with tokens in one static group and one deployment to it (expanded);
2. starts the real server (gunicorn, production settings, DEBUG off) and a real Celery worker (the
   finalisation task every ``success`` dispatches runs there, as in production);
3. every device polls ``next`` once (admission, 200), then per run:
   * ``ping`` (``POST /api/devices/v1/flotilla/ping``) for ``--duration`` s — the limit;
   * ``--devices`` devices (a fresh slice per run) each send ``PUT …/deployments/{id}/status``
     ``downloading``, ``installing``, ``success`` in order, ``--connections`` devices at a time;
4. prints reports/s, p50/p99 (median of the runs), the ratio to ``ping``, the answers that were not
   204 (5xx, lock timeouts: the goal is none), and checks the deployment statistics from the
   management API (a user token) against the expected counts, and that the worker finished the
   deployment once every device succeeded.

Exit status 0 when every report got its 204 and the statistics are exact.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from typing import Any

from bench import common

DATABASE = "flotilla_bench_status"
PING = "/api/devices/v1/flotilla/ping"
NEXT = "/api/devices/v2/deployments/device/deployments/next"
STATUSES = ("downloading", "installing", "success")
PROFILED = (
    11  # the first one's queries are listed, the other ten are run under cProfile
)


def _management_get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _user_token() -> str:
    from django.contrib.auth import get_user_model

    from config.accounts.services.tokens import issue_user_token

    user = get_user_model().objects.create_user(
        username="bench@example.com",
        email="bench@example.com",
        password="bench-secret-pass-123",
    )
    return issue_user_token(user=user)


def _profile_reports(
    device_ids: list[str], tokens: dict[str, str], path: str, deployment_id: str
) -> list[common.Row]:
    """Queries and time of one device's three reports, then CPU by package of ten more devices'.

    In process (Django test client, same database and broker as the server).
    """
    import cProfile
    import pstats
    from collections import defaultdict

    from django.db import connection
    from django.test import Client

    from bench.poll import _package
    from deployments_app.tasks import finalise_deployment_task

    client = Client(HTTP_HOST=common.HOST)
    first, *others = device_ids
    # Warm-up, as in a running server: code loaded, database and broker connections open.
    client.post(PING, HTTP_AUTHORIZATION=f"Bearer {tokens[first]}")
    finalise_deployment_task.delay(deployment_id)

    def put(device_id: str, status: str) -> None:
        response = client.put(
            path,
            data=json.dumps({"status": status}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {tokens[device_id]}",
        )
        if response.status_code != 204:
            raise RuntimeError(f"profiled report answered {response.status_code}")

    rows = []
    for status in STATUSES:
        queries: list[tuple[float, str]] = []

        def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                queries.append((time.perf_counter() - started, sql))  # noqa: B023

        with connection.execute_wrapper(timed):
            started = time.perf_counter()
            put(first, status)
            elapsed = time.perf_counter() - started
        sql_ms = sum(t for t, _ in queries) * 1000
        rows.append(
            common.Row(
                f"in process: one '{status}' report",
                f"{len(queries)} queries, {sql_ms:.1f} ms SQL of {elapsed * 1000:.1f} ms",
            )
        )
        common.say(f"Queries of one '{status}' report (ms):")
        for seconds, sql in queries:
            common.say(f"    {seconds * 1000:6.2f}  {' '.join(sql.split())[:140]}")

    profiler = cProfile.Profile()
    for device_id in others:
        for status in STATUSES:
            profiler.enable()
            put(device_id, status)
            profiler.disable()
    by_package: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _, function), entry in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        by_package[_package(filename, function)] += entry[2]
        total += entry[2]
    reports = len(others) * len(STATUSES)
    if reports:
        common.say()
        common.say(
            f"CPU of a status report by package (cProfile own time, {reports} reports, "
            f"{total / reports * 1000:.1f} ms per report under the profiler):"
        )
        for package, seconds in sorted(by_package.items(), key=lambda kv: -kv[1]):
            common.say(
                f"    {package:<22} {seconds / reports * 1000:6.2f} ms  {seconds / total * 100:5.1f} %"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--devices", type=int, default=1500, help="devices per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of ping per run"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="no verdict on timings")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    # Devices more than the runs use: their reports are profiled in process at the end.
    total = args.devices * args.runs + PROFILED

    common.log(
        f"machine: {common.machine_line()}, load average {os.getloadavg()[0]:.1f}"
    )
    database = common.scratch_name(DATABASE)
    with common.scratch(database, keep=args.keep) as (work, claim):
        env = common.bench_env(database, claim.url, work)
        common.migrate(env)
        tokens_path = work / "tokens.txt"
        output = common.manage(
            env, "generate_fleet", "--devices", str(total), "--deployments", "1",
            "--groups", "1", "--tokens", str(tokens_path), "--prefix", "status",
        )  # fmt: skip
        for line in output.strip().splitlines():
            common.log(f"generate_fleet: {line}")
        common.setup_django(env)
        from django.db.models import Count

        from deployments_app.models import Deployment, DeviceDeployment
        from devices_app.models import Device

        tokens = common.read_tokens(tokens_path)
        deployment = Deployment.objects.get()
        inventory = {
            str(pk): attributes
            for pk, attributes in Device.objects.values_list("id", "inventory")
        }
        user_token = _user_token()
        device_ids = sorted(tokens)

        with (
            common.worker(env, work) as celery,
            common.server(env, work, workers=args.workers, threads=args.threads) as web,
        ):

            def request(method: str, path: str, device_id: str, body: Any) -> bytes:
                return common.http_request(
                    method, path, port=web.port, token=tokens[device_id], body=body
                )

            def poll_body(device_id: str) -> dict[str, Any]:
                attributes = inventory[device_id]
                return {
                    "device_provides": {
                        "artifact_name": attributes["artifact_name"],
                        "device_type": attributes["device_type"],
                    }
                }

            ping_requests = [request("POST", PING, d, {}) for d in device_ids]
            common.run_load(
                "warm-up",
                port=web.port,
                sessions=common.random_sessions(ping_requests),
                connections=args.connections,
                duration=min(2.0, args.duration),
            )
            admission = common.run_load(
                "admission (first poll)",
                port=web.port,
                sessions=iter(
                    [(request("POST", NEXT, d, poll_body(d)),) for d in device_ids]
                ),
                connections=args.connections,
                duration=600,
            )
            common.log(
                f"admission: {admission.requests} polls, {admission.rate:.0f}/s, "
                f"statuses {dict(admission.statuses)}"
            )
            if admission.unexpected({200}):
                raise RuntimeError(f"admission failed: {dict(admission.statuses)}")

            cpu_groups = {
                "web": web.worker_pids,
                "postgres": common.postgres_pids,
                "worker": lambda: [celery.pid],
            }
            pings, reports = [], []
            status_path = (
                f"/api/devices/v1/deployments/device/deployments/{deployment.id}/status"
            )
            for run in range(args.runs):
                ping = common.run_load(
                    "ping",
                    port=web.port,
                    sessions=common.random_sessions(ping_requests, seed=run),
                    connections=args.connections,
                    duration=args.duration,
                    cpu_groups=cpu_groups,
                )
                batch = device_ids[run * args.devices : (run + 1) * args.devices]
                sessions = iter(
                    [
                        tuple(
                            request("PUT", status_path, d, {"status": s})
                            for s in STATUSES
                        )
                        for d in batch
                    ]
                )
                report = common.run_load(
                    "status reports",
                    port=web.port,
                    sessions=sessions,
                    connections=args.connections,
                    duration=3600,
                    cpu_groups=cpu_groups,
                )
                common.log(
                    f"run {run + 1}: ping {ping.rate:.0f}/s p99 {ping.percentile_ms(99):.1f} ms; "
                    f"reports {report.requests} in {report.elapsed:.1f} s = {report.rate:.0f}/s, "
                    f"p50 {report.percentile_ms(50):.1f} ms, p99 {report.percentile_ms(99):.1f} ms, "
                    f"statuses {dict(report.statuses)}"
                )
                pings.append(ping)
                reports.append(report)

            profile = _profile_reports(
                device_ids[-PROFILED:], tokens, status_path, str(deployment.id)
            )
            url = f"{web.url}/api/management/v1/deployments/deployments/{deployment.id}/statistics"
            statistics = _management_get(url, user_token)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                deployment.refresh_from_db()
                if deployment.status == "finished":
                    break
                time.sleep(0.2)
            server_log = web.log_path.read_text(errors="replace")
            worker_log = celery.log_text()

        db_counts = dict(
            DeviceDeployment.objects.filter(deployment=deployment)
            .values_list("status")
            .annotate(n=Count("id"))
        )
        errors = sum(r.unexpected({204}) for r in reports)
        server_errors = sum(
            n for r in reports for code, n in r.statuses.items() if code >= 500
        )
        lock_errors = sum(
            server_log.count(word) + worker_log.count(word)
            for word in ("lock timeout", "LockNotAvailable", "deadlock detected")
        )
        expected = {"success": total}
        exact = (
            statistics.get("success") == total
            and sum(v for k, v in statistics.items() if k != "success") == 0
            and db_counts == expected
        )
        finished = deployment.status == "finished"

        ping_rate = common.median(p.rate for p in pings)
        rate = common.median(r.rate for r in reports)
        requests = sum(r.requests for r in reports)
        web_cpu = sum(r.cpu.get("web", 0.0) for r in reports) / requests * 1000
        pg_cpu = sum(r.cpu.get("postgres", 0.0) for r in reports) / requests * 1000
        worker_cpu = sum(r.cpu.get("worker", 0.0) for r in reports) / requests * 1000
        rows = [
            common.Row("admission polls/s (setup)", f"{admission.rate:.0f}"),
            common.Row("ping: requests/s", f"{ping_rate:.0f}"),
            common.Row(
                "ping: p50 / p99",
                f"{common.median(p.percentile_ms(50) for p in pings):.1f} / "
                f"{common.median(p.percentile_ms(99) for p in pings):.1f} ms",
            ),
            common.Row("status reports/s", f"{rate:.0f}"),
            common.Row(
                "status report p50 / p99",
                f"{common.median(r.percentile_ms(50) for r in reports):.1f} / "
                f"{common.median(r.percentile_ms(99) for r in reports):.1f} ms",
            ),
            common.Row(
                "status report CPU per request web / postgres / celery worker",
                f"{web_cpu:.1f} / {pg_cpu:.1f} / {worker_cpu:.1f} ms",
            ),
            common.Row(
                "reports/s / ping", f"{rate / ping_rate:.2f}" if ping_rate else "-"
            ),
            common.Row(
                "answers other than 204 (5xx)",
                f"{errors} ({server_errors})",
                "0",
                common.verdict(errors == 0),
            ),
            common.Row(
                "lock timeouts / deadlocks in the logs",
                str(lock_errors),
                "0",
                common.verdict(lock_errors == 0),
            ),
            common.Row(
                "statistics (API) exact",
                json.dumps({k: v for k, v in statistics.items() if v}),
                json.dumps(expected),
                common.verdict(exact),
            ),
            common.Row(
                "deployment finished by the worker",
                deployment.status,
                "finished",
                common.verdict(finished),
            ),
        ]
        rows += profile
        common.print_table(
            f"Status reports, {total} devices of one deployment ({args.runs} runs × "
            f"{args.devices} devices × 3 reports), {args.connections} connections",
            rows,
        )
    return 0 if errors == 0 and lock_errors == 0 and exact and finished else 1


if __name__ == "__main__":
    sys.exit(main())
