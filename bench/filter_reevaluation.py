"""Re-evaluating a saved filter's membership vs a plain set-based SQL statement (goal: ≤ 2×).

Usage (from the project root, PostgreSQL on 127.0.0.1:5432 reachable as ``postgres``):

    .venv/bin/python -m bench.filter_reevaluation [--devices 200000] [--runs 3] [--keep]

``--devices 2000`` is a quick smoke run.

What it does:
1. creates a scratch database (``flotilla_bench_filters``; dropped at the end unless ``--keep``)
   and migrates it;
2. inserts ``--devices`` accepted devices set-based (``generate_series``), each with a realistic
   client inventory (device_type, artifact_name, mender_client_version, hostname, kernel, a list
   attribute, a number); half of them have ``device_type = "rpi4"``;
3. saves a filter ``inventory.device_type $eq "rpi4"`` (matching half the fleet) and times, median
   of ``--runs``, each in the same run on the same data:

   * baseline: the plain statement ``INSERT INTO <copy of the membership table> SELECT … WHERE
     <same condition>`` (computing and storing the same set, into a table with the same keys and
     indexes, emptied before each run) — and, for reference, ``SELECT count(*)`` of the set;
   * ``evaluate_device_filter`` (what the worker runs: batched, diff-based, under the membership
     lock) from an empty membership ("cold"), on an unchanged one ("steady") and after 1 % of the
     fleet changed ("churn");
4. times the single-device paths: an inventory change (write + synchronous re-check of the
   device's memberships) and an identical inventory (read only), median of 200;
5. prints the figures and the cold/baseline ratio; exit status 0 when the ratio is ≤ 2 (checked
   from 100000 devices on; smaller runs are smoke runs and exit 0).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg

DATABASE = "flotilla_bench_filters"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
GOAL_RATIO = 2.0
# Below this, fixed per-call costs (lock, filter read) dominate: the goal is about large fleets.
GOAL_MIN_DEVICES = 100_000


def _say(message: str = "") -> None:
    print(message, flush=True)  # noqa: T201 - a CLI script


def _admin(statement: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(statement)


def _median_seconds(
    action: Callable[[], Any], runs: int, before: Callable[[], Any] | None = None
) -> float:
    timings = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _setup_django() -> None:
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _insert_devices(count: int) -> None:
    from django.db import connection

    sql = """
        INSERT INTO devices_app_device
            (id, identity_data, identity_hash, status, created_ts, updated_ts, inventory, tags)
        SELECT gen_random_uuid(),
               jsonb_build_object('mac', 'bench-' || i),
               md5(i::text) || md5('bench' || i::text),
               'accepted', now(), now(),
               jsonb_build_object(
                   'device_type', CASE WHEN i %% 2 = 0 THEN 'rpi4' ELSE 'x86-64' END,
                   'artifact_name', 'release-' || (i %% 7),
                   'mender_client_version', '3.4.0+ds1-5+b1',
                   'hostname', 'device-' || i,
                   'kernel', '6.1.0-' || (i %% 3) || '-amd64',
                   'ipv4_eth0', jsonb_build_array('10.' || (i / 65536) %% 256 || '.' || (i / 256) %% 256 || '.' || i %% 256 || '/16'),
                   'cpus', 1 + i %% 8),
               '{}'::jsonb
        FROM generate_series(1, %s) AS i
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [count])
        cursor.execute("VACUUM ANALYZE devices_app_device")


def run(devices: int, runs: int) -> float:
    from django.db import connection

    from devices_app.filtering import compile_terms, parse_terms
    from devices_app.models import Device, DeviceFilter
    from devices_app.services.inventory import merge_device_inventory
    from devices_app.services.memberships import evaluate_device_filter

    started = time.perf_counter()
    _insert_devices(devices)
    _say(f"devices: {devices} inserted in {time.perf_counter() - started:.1f} s")

    terms = [
        {
            "scope": "inventory",
            "attribute": "device_type",
            "type": "$eq",
            "value": "rpi4",
        }
    ]
    saved = DeviceFilter.objects.create(name="rpi4", terms=terms)
    condition, params = compile_terms(parse_terms(terms), table="d")
    select = f"SELECT %s::uuid, d.id, now() FROM devices_app_device d WHERE d.status = 'accepted' AND {condition}"

    def sql(statement: str, args: list[Any] | None = None) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(statement, args or [])
            return cursor.fetchone() if cursor.description else None

    sql("DROP TABLE IF EXISTS bench_baseline")
    sql("CREATE TABLE bench_baseline (LIKE devices_app_filtermembership INCLUDING ALL)")
    matched = sql(f"SELECT count(*) FROM ({select}) s", [str(saved.id), *params])[0]
    _say(f"filter:  {terms[0]} matches {matched} devices")

    count_s = _median_seconds(
        lambda: sql(f"SELECT count(*) FROM ({select}) s", [str(saved.id), *params]),
        runs,
    )
    baseline_s = _median_seconds(
        lambda: sql(f"INSERT INTO bench_baseline {select}", [str(saved.id), *params]),
        runs,
        before=lambda: sql("TRUNCATE bench_baseline"),
    )
    truncate = lambda: sql("TRUNCATE devices_app_filtermembership")  # noqa: E731
    cold_s = _median_seconds(
        lambda: evaluate_device_filter(filter_id=saved.id), runs, before=truncate
    )
    stored = sql("SELECT count(*) FROM devices_app_filtermembership")[0]
    assert stored == matched, (stored, matched)
    steady_s = _median_seconds(lambda: evaluate_device_filter(filter_id=saved.id), runs)

    churned = max(1, devices // 100)

    def churn() -> None:
        # 1 % of the fleet swaps device type (half join, half leave).
        sql(
            "UPDATE devices_app_device SET inventory = jsonb_set(inventory, '{device_type}', "
            "CASE WHEN inventory->>'device_type' = 'rpi4' THEN '\"x86-64\"' ELSE '\"rpi4\"' END::jsonb) "
            "WHERE id IN (SELECT id FROM devices_app_device ORDER BY random() LIMIT %s)",
            [churned],
        )

    churn_s = _median_seconds(
        lambda: evaluate_device_filter(filter_id=saved.id), runs, before=churn
    )
    expected = sql(f"SELECT count(*) FROM ({select}) s", [str(saved.id), *params])[0]
    stored = sql("SELECT count(*) FROM devices_app_filtermembership")[0]
    assert stored == expected, (stored, expected)

    device_id = Device.objects.order_by("id").values_list("id", flat=True).first()
    if device_id is None:
        raise RuntimeError("the fleet has no devices")
    toggle = iter(["rpi4", "x86-64"] * 1000)
    change_s = _median_seconds(
        lambda: merge_device_inventory(
            device_id=device_id, attributes={"device_type": next(toggle)}
        ),
        200,
    )
    current = Device.objects.get(pk=device_id).inventory
    same_s = _median_seconds(
        lambda: merge_device_inventory(device_id=device_id, attributes=current), 200
    )

    ratio = cold_s / baseline_s
    _say()
    _say(f"plain SELECT count(*) of the set ............ {count_s * 1000:9.1f} ms")
    _say(f"plain INSERT … SELECT of the set (baseline) . {baseline_s * 1000:9.1f} ms")
    _say(f"evaluate_device_filter, cold (empty) ........ {cold_s * 1000:9.1f} ms")
    _say(f"evaluate_device_filter, steady (no change) .. {steady_s * 1000:9.1f} ms")
    _say(
        f"evaluate_device_filter, churn ({churned} devices) {'.' * max(1, 12 - len(str(churned)))} {churn_s * 1000:9.1f} ms"
    )
    _say(f"single device: inventory changed + re-check . {change_s * 1000:9.2f} ms")
    _say(f"single device: identical inventory (no write) {same_s * 1000:9.2f} ms")
    _say()
    _say(f"ratio cold / baseline: {ratio:.2f} (goal ≤ {GOAL_RATIO:.0f})")
    _say(f"ratio steady / baseline: {steady_s / baseline_s:.2f}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DATABASE}")
    try:
        _setup_django()
        ratio = run(args.devices, args.runs)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    if args.devices < GOAL_MIN_DEVICES:
        _say(f"(smoke run: the goal is checked from {GOAL_MIN_DEVICES} devices on)")
        return 0
    return 0 if ratio <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
