"""Dynamic re-evaluation: a saved filter matching half the fleet vs plain SQL; single-device re-check.

Usage (from the project root; PostgreSQL as for the tests):

    .venv/bin/python -m bench.dynamic [--devices 200000] [--runs 3] [--filters 10] [--keep]

``--devices 2000 --runs 1`` is a smoke run.

It runs ``bench/filter_reevaluation.py`` (which does the measuring: see its docstring) on the same
PostgreSQL server as the other benchmarks, in the scratch database ``flotilla_bench_filters_<pid>``:
``--devices`` devices, a filter ``inventory.device_type $eq rpi4`` matching half of them, the cold
evaluation (what the worker runs) vs the plain ``INSERT … SELECT`` of the same set (median of
``--runs``), and the single-device path (inventory write + synchronous re-check, median of 200)
with that one saved filter. Then, on the same data, it saves ``--filters`` − 1 more filters (one on
each inventory attribute kind: equality, range, regex, list membership) and times the
single-device path again with ``--filters`` saved filters, which is closer to a real server.
Last, it times creating a phased dynamic deployment on a filter saved a moment ago (not evaluated
yet, so creation counts the half of the fleet that matches from the inventory), median of
``--runs``, against a plain ``SELECT count(*)`` of the same set.

Prints a table with the goals: cold / baseline ≤ 2, single-device re-check ≤ 5 ms, creation
≤ 500 ms (and ≤ 2 × the plain count).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from typing import Any

from bench import common, filter_reevaluation

GOAL_RATIO = 2.0
GOAL_RECHECK_MS = 5.0
# Creating a dynamic deployment counts the filter's matches in the inventory: well under a second.
GOAL_CREATION_MS = 500.0
GOAL_CREATION_RATIO = 2.0
EXTRA_TERMS = [
    {"scope": "inventory", "attribute": "kernel", "type": "$eq", "value": "6.1.0-1-amd64"},
    {"scope": "inventory", "attribute": "cpus", "type": "$gte", "value": 4},
    {"scope": "inventory", "attribute": "hostname", "type": "$regex", "value": "^device-1"},
    {"scope": "inventory", "attribute": "artifact_name", "type": "$in", "value": ["release-1", "release-2"]},
    {"scope": "inventory", "attribute": "ipv4_eth0", "type": "$exists", "value": True},
    {"scope": "inventory", "attribute": "device_type", "type": "$ne", "value": "x86-64"},
    {"scope": "inventory", "attribute": "cpus", "type": "$lt", "value": 3},
    {"scope": "inventory", "attribute": "mender_client_version", "type": "$eq", "value": "3.4.0+ds1-5+b1"},
    {"scope": "inventory", "attribute": "artifact_name", "type": "$nin", "value": ["release-0"]},
]  # fmt: skip


class _Tee(io.StringIO):
    """Keeps what is printed and still prints it."""

    def write(self, text: str) -> int:
        if sys.__stdout__ is not None:  # None only without a console at all
            sys.__stdout__.write(text)
            sys.__stdout__.flush()
        return super().write(text)


def _figure(output: str, label: str) -> float | None:
    match = re.search(re.escape(label) + r"[ .…]*\s+([0-9.]+) ms", output)
    return float(match.group(1)) if match else None


def _ratio(output: str) -> float | None:
    match = re.search(r"ratio cold / baseline: ([0-9.]+)", output)
    return float(match.group(1)) if match else None


def _recheck_with_filters(count: int) -> float:
    """Median ms of an inventory change + re-check of one device with ``count`` saved filters."""
    from devices_app.filtering import parse_terms
    from devices_app.models import Device, DeviceFilter
    from devices_app.services.inventory import merge_device_inventory
    from devices_app.services.memberships import evaluate_device_filter

    for index, term in enumerate(EXTRA_TERMS[: max(0, count - 1)]):
        parse_terms([term])
        saved = DeviceFilter.objects.create(name=f"bench-extra-{index}", terms=[term])
        evaluate_device_filter(filter_id=saved.id)
    device_id = Device.objects.order_by("id").values_list("id", flat=True).first()
    assert device_id is not None  # filter_reevaluation.run() has created the devices
    toggle = iter(["rpi4", "x86-64"] * 1000)
    return filter_reevaluation._median_seconds(
        lambda: merge_device_inventory(
            device_id=device_id, attributes={"device_type": next(toggle)}
        ),
        200,
    )


def _creation_on_new_filter(runs: int) -> tuple[float, float, int]:
    """Median seconds to create a phased dynamic deployment on a filter saved a moment ago.

    The filter is stored as ``create_device_filter`` commits it, before its evaluation worker
    runs (empty membership), so creation has to count the matches from the inventory. Returns
    (creation, plain ``SELECT count(*)`` of the same set, matching devices).
    """
    import datetime as dt

    from django.db import connection
    from django.utils import timezone

    from deployments_app.models import Artifact, Release
    from deployments_app.services.creation import PhaseRequest, create_deployment
    from devices_app.filtering import compile_terms, parse_terms
    from devices_app.models import DeviceFilter, FilterMembership

    release = Release.objects.create(name="bench-create")
    Artifact.objects.create(
        release=release,
        name="bench-create",
        device_types_compatible=["rpi4"],
        info_format="mender",
        info_version=3,
        depends={"device_type": ["rpi4"]},
        provides={"artifact_name": "bench-create"},
        updates=[],
        size=1024,
        file="artifacts/bench-create.mender",
    )
    terms = [
        {
            "scope": "inventory",
            "attribute": "device_type",
            "type": "$eq",
            "value": "rpi4",
        }
    ]
    condition, params = compile_terms(parse_terms(terms), table="d")
    count_sql = (
        "SELECT count(*) FROM devices_app_device d "
        f"WHERE d.status = 'accepted' AND {condition}"
    )

    def plain_count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(count_sql, params)
            return cursor.fetchone()[0]

    saved_filters: list[Any] = []
    created: list[Any] = []

    def save_filter() -> None:
        # Untimed: only the deployment's creation is measured.
        saved = DeviceFilter.objects.create(
            name=f"bench-create-{len(saved_filters)}", terms=terms
        )
        assert not FilterMembership.objects.filter(device_filter_id=saved.id).exists()
        saved_filters.append(saved)

    def create() -> None:
        saved = saved_filters[-1]
        created.append(
            create_deployment(
                name=saved.name,
                artifact_name="bench-create",
                filter_id=saved.id,
                phases=[
                    PhaseRequest(batch_size=80, start_ts=None),
                    PhaseRequest(
                        batch_size=None, start_ts=timezone.now() + dt.timedelta(hours=1)
                    ),
                ],
            )
        )

    matched = plain_count()
    count_s = filter_reevaluation._median_seconds(plain_count, runs)
    creation_s = filter_reevaluation._median_seconds(create, runs, before=save_filter)
    assert all(d.initial_device_count == matched for d in created), matched
    return creation_s, count_s, matched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--devices", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--filters", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="no verdict on timings")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    common.log(
        f"machine: {common.machine_line()}, load average {os.getloadavg()[0]:.1f}"
    )
    database = common.scratch_name(filter_reevaluation.DATABASE)
    # Same server as the other benchmarks (DATABASE_URL's, else 127.0.0.1:5432).
    filter_reevaluation.ADMIN_DSN = common.psycopg_dsn("postgres")
    filter_reevaluation.DATABASE_URL = common.database_url(database)
    common.create_database(database)
    captured = _Tee()
    try:
        filter_reevaluation._setup_django()
        with contextlib.redirect_stdout(captured):
            filter_reevaluation.run(args.devices, args.runs)
        many_ms = _recheck_with_filters(args.filters) * 1000
        creation_s, creation_count_s, creation_matched = _creation_on_new_filter(
            args.runs
        )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            common.drop_database(database)
    output = captured.getvalue()
    ratio = _ratio(output)
    one_ms = _figure(output, "single device: inventory changed + re-check")
    same_ms = _figure(output, "single device: identical inventory (no write)")
    ok_ratio = ratio is not None and ratio <= GOAL_RATIO
    ok_one = one_ms is not None and one_ms <= GOAL_RECHECK_MS
    ok_many = many_ms <= GOAL_RECHECK_MS
    creation_ms = creation_s * 1000
    creation_ratio = creation_s / creation_count_s
    ok_creation = (
        creation_ms <= GOAL_CREATION_MS and creation_ratio <= GOAL_CREATION_RATIO
    )

    def shown(value: Any, unit: str = "") -> str:
        return "-" if value is None else f"{value:.2f}{unit}"

    smoke = args.smoke
    rows = [
        common.Row(
            f"full re-evaluation (cold) / plain INSERT … SELECT, {args.devices} devices",
            shown(ratio),
            f"≤ {GOAL_RATIO:.0f}",
            "" if smoke else common.verdict(ok_ratio),
        ),
        common.Row(
            "single device: inventory change + re-check, 1 saved filter",
            shown(one_ms, " ms"),
            f"≤ {GOAL_RECHECK_MS:.0f} ms",
            "" if smoke else common.verdict(ok_one),
        ),
        common.Row(
            f"single device: inventory change + re-check, {args.filters} saved filters",
            f"{many_ms:.2f} ms",
            f"≤ {GOAL_RECHECK_MS:.0f} ms",
            "" if smoke else common.verdict(ok_many),
        ),
        common.Row(
            "single device: identical inventory (read only)", shown(same_ms, " ms")
        ),
        common.Row(
            f"phased deployment on a just-saved filter of {creation_matched} devices: creation",
            f"{creation_ms:.1f} ms",
            f"≤ {GOAL_CREATION_MS:.0f} ms",
            "" if smoke else common.verdict(ok_creation),
        ),
        common.Row(
            "  the same / plain SELECT count(*) of the set",
            f"{creation_ratio:.2f}",
            f"≤ {GOAL_CREATION_RATIO:.0f}",
        ),
    ]
    common.print_table(
        f"Dynamic re-evaluation, {args.devices} devices (figures above: median of {args.runs})",
        rows,
    )
    return 0 if smoke or (ok_ratio and ok_one and ok_many and ok_creation) else 1


if __name__ == "__main__":
    sys.exit(main())
