"""Generate a fleet for benchmarks: accepted devices with inventory, groups, artifacts, deployments.

    python manage.py generate_fleet --devices 100000 --deployments 50 --dynamic 10 --tokens tokens.txt

Everything bulk is set-based (``generate_series``, ``INSERT … SELECT``); deployments go through the
real ``create_deployment`` service and saved filters through ``create_device_filter``, with Celery
in eager mode for the duration of the command, so the static expansions and the filter evaluations
(both set-based) run here and are complete when the command returns.

The fleet (device ``i`` of ``1..N``):

* inventory: ``device_type`` (one of ``DEVICE_TYPES``, ``i mod 4``), ``artifact_name``
  (``<prefix>-factory-image``), ``region`` (``region-<(i div 10) mod 10>``), ``hostname``, ``kernel``,
  ``cpus``, ``mender_client_version``, ``mac``;
* static group ``<prefix>-g<NN>`` (``i mod --groups``); the last ``--idle`` devices are in group
  ``<prefix>-idle`` and region ``idle`` instead, so no deployment targets them (their poll is a 204);
* one release per deployment (``<prefix>-release-<NN>``) with one artifact row per device type
  (no file: device polls only need the row to build a download link);
* ``--deployments`` active deployments, ``--dynamic`` of them on saved filters
  ``inventory.region $eq region-<k>``; static deployment ``s`` targets group ``s mod --groups``.
  Creation order interleaves them (a dynamic one after every few static ones), so for some devices
  the oldest deployment targeting them is dynamic and for others static.

Speed: foreign keys are checked by per-row triggers (deferred to commit), which cost more than the
inserts themselves; as a superuser the command sets ``session_replication_role = replica`` for its
own session, so they do not fire (the rows are consistent by construction), unless
``--check-foreign-keys``. The static expansions run as one batch (one ``INSERT … SELECT``) each.

``--tokens FILE`` also creates an accepted auth set and a device token row per device and writes
``<device_id> <token>`` lines (JWTs signed with this settings' SECRET_KEY).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from config.api.tokens import DEVICE_CLAIM, issue_token
from config.celery import app
from deployments_app.models import Artifact, Release
from deployments_app.services.creation import create_deployment
from devices_app.models import AuthSet, Device, DeviceToken, GroupMembership
from devices_app.services.filters import create_device_filter
from devices_app.states import AuthSetStatus, DeviceStatus

DEVICE_TYPES = ("rpi4", "x86-64", "beaglebone", "imx8mm")
REGIONS = 10
CLIENT_VERSION = "4.0.4"


@contextmanager
def eager_tasks() -> Any:
    """Run tasks dispatched meanwhile in this process (expansion, filter evaluation), not on a broker."""

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def group_name(prefix: str, index: int) -> str:
    return f"{prefix}-g{index:02d}"


def insert_devices(
    *, count: int, prefix: str, groups: int, idle: int
) -> tuple[int, int]:
    """Insert ``count`` accepted devices with inventory and their open group memberships; returns (first, last) index."""

    now = timezone.now()
    first_idle = count - idle + 1
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Device._meta.db_table}
                (id, identity_data, identity_hash, status, created_ts, updated_ts,
                 check_in_time, inventory, tags, group_name)
            SELECT gen_random_uuid(),
                   jsonb_build_object('mac', mac),
                   md5(%(prefix)s || i) || md5(i::text || %(prefix)s),
                   %(accepted)s, %(now)s, %(now)s, NULL,
                   jsonb_build_object(
                       'device_type', (%(types)s::text[])[1 + i %% %(type_count)s],
                       'artifact_name', %(prefix)s || '-factory-image',
                       'region', CASE WHEN i >= %(first_idle)s THEN 'idle'
                                      ELSE 'region-' || ((i / 10) %% %(regions)s) END,
                       'hostname', %(prefix)s || '-' || i,
                       'kernel', '6.1.0-' || (i %% 3) || '-arm64',
                       'cpus', 1 + i %% 8,
                       'mender_client_version', %(client)s,
                       'mac', mac),
                   '{{}}'::jsonb,
                   CASE WHEN i >= %(first_idle)s THEN %(prefix)s || '-idle'
                        ELSE %(prefix)s || '-g' || lpad((i %% %(groups)s)::text, 2, '0') END
            FROM generate_series(1, %(count)s) AS i,
                 LATERAL (SELECT %(prefix)s || ':' || lpad(to_hex(i), 10, '0') AS mac) m
            """,
            {
                "prefix": prefix,
                "now": now,
                "accepted": DeviceStatus.ACCEPTED.value,
                "types": list(DEVICE_TYPES),
                "type_count": len(DEVICE_TYPES),
                "first_idle": first_idle,
                "regions": REGIONS,
                "client": CLIENT_VERSION,
                "groups": groups,
                "count": count,
            },
        )
        cursor.execute(
            f"""
            INSERT INTO {GroupMembership._meta.db_table} (device_id, group_name, added_ts)
            SELECT id, group_name, %s FROM {Device._meta.db_table}
            WHERE identity_data->>'mac' LIKE %s AND group_name IS NOT NULL
            """,
            [now, f"{prefix}:%"],
        )
    return 1, count


def insert_tokens(*, prefix: str, path: Path) -> int:
    """An accepted auth set and a device token row per device of the fleet; writes ``<id> <jwt>`` lines."""

    now = timezone.now()
    expires = now + settings.FLOTILLA_DEVICE_TOKEN_TTL
    devices = f"SELECT id, identity_data FROM {Device._meta.db_table} WHERE identity_data->>'mac' LIKE %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {AuthSet._meta.db_table} (id, device_id, identity_data, pubkey, status, ts)
            SELECT gen_random_uuid(), d.id, d.identity_data, 'bench-key-' || d.id, %s, %s
            FROM ({devices}) d
            """,
            [AuthSetStatus.ACCEPTED.value, now, f"{prefix}:%"],
        )
        cursor.execute(
            f"""
            INSERT INTO {DeviceToken._meta.db_table} (id, device_id, auth_set_id, created_ts, expires_ts)
            SELECT gen_random_uuid(), a.device_id, a.id, %s, %s
            FROM {AuthSet._meta.db_table} a JOIN ({devices}) d ON d.id = a.device_id
            WHERE a.pubkey LIKE 'bench-key-%%'
            RETURNING device_id, id
            """,
            [now, expires, f"{prefix}:%"],
        )
        rows = cursor.fetchall()
    ttl = settings.FLOTILLA_DEVICE_TOKEN_TTL
    with path.open("w") as out:
        for device_id, token_id in rows:
            token = issue_token(
                jti=str(token_id),
                subject=str(device_id),
                ttl=ttl,
                claims={DEVICE_CLAIM: True},
            )
            out.write(f"{device_id} {token}\n")
    return len(rows)


def create_releases(*, prefix: str, count: int) -> list[str]:
    """One release per deployment, one artifact row per device type; returns the release names."""

    names = [f"{prefix}-release-{index:02d}" for index in range(count)]
    releases = Release.objects.bulk_create(Release(name=name) for name in names)
    artifacts = []
    for release in releases:
        for number, device_type in enumerate(DEVICE_TYPES):
            artifact = Artifact(
                release=release,
                name=release.name,
                device_types_compatible=[device_type],
                info_format="mender",
                info_version=3,
                depends={"device_type": [device_type]},
                provides={"artifact_name": release.name},
                updates=[
                    {
                        "type_info": {"type": "rootfs-image"},
                        "files": [],
                        "meta_data": {},
                    }
                ],
                size=64 * 1024 * 1024 + number,
            )
            artifact.file = f"artifacts/{artifact.id}.mender"
            artifacts.append(artifact)
    Artifact.objects.bulk_create(artifacts)
    return names


def deployment_plan(total: int, dynamic: int) -> list[str]:
    """Creation order: "static"/"dynamic" per position, a dynamic one after every few static ones."""
    static = total - dynamic
    if dynamic == 0:
        return ["static"] * total
    every = max(1, static // dynamic)
    plan: list[str] = []
    static_left, dynamic_left = static, dynamic
    while static_left or dynamic_left:
        for _ in range(min(every, static_left)):
            plan.append("static")
            static_left -= 1
        if dynamic_left:
            plan.append("dynamic")
            dynamic_left -= 1
        if not dynamic_left:
            plan.extend(["static"] * static_left)
            static_left = 0
    return plan


def create_deployments(
    *, prefix: str, releases: list[str], dynamic: int, groups: int
) -> tuple[int, int]:
    """Active deployments through the real service; returns (static, dynamic) created."""

    static_index = dynamic_index = 0
    for position, kind in enumerate(deployment_plan(len(releases), dynamic)):
        name = f"{prefix}-deployment-{position:02d}"
        if kind == "dynamic":
            region = f"region-{dynamic_index % REGIONS}"
            device_filter = create_device_filter(
                name=f"{prefix}-filter-{dynamic_index:02d}",
                terms=[
                    {
                        "scope": "inventory",
                        "attribute": "region",
                        "type": "$eq",
                        "value": region,
                    }
                ],
            )
            create_deployment(
                name=name,
                artifact_name=releases[position],
                filter_id=device_filter.id,
            )
            dynamic_index += 1
        else:
            create_deployment(
                name=name,
                artifact_name=releases[position],
                group=group_name(prefix, static_index % groups),
            )
            static_index += 1
    return static_index, dynamic_index


class Command(BaseCommand):
    help = "Create a benchmark fleet: N accepted devices, groups, artifacts and M active deployments (K dynamic)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--devices", type=int, required=True)
        parser.add_argument("--deployments", type=int, default=0)
        parser.add_argument(
            "--dynamic",
            type=int,
            default=0,
            help="how many of the deployments are dynamic",
        )
        parser.add_argument("--groups", type=int, default=10, help="static groups")
        parser.add_argument(
            "--idle", type=int, default=0, help="devices no deployment targets"
        )
        parser.add_argument("--prefix", default="fleet", help="names and identities")
        parser.add_argument(
            "--tokens", type=Path, help="write '<device_id> <token>' lines here"
        )
        parser.add_argument(
            "--check-foreign-keys",
            action="store_true",
            help="let the foreign-key triggers fire (slower)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        devices, deployments = options["devices"], options["deployments"]
        dynamic, groups, idle = options["dynamic"], options["groups"], options["idle"]
        if devices < 1 or groups < 1 or not 0 <= idle < devices:
            raise CommandError(
                "need --devices ≥ 1, --groups ≥ 1, 0 ≤ --idle < --devices"
            )
        if not 0 <= dynamic <= deployments:
            raise CommandError("need 0 ≤ --dynamic ≤ --deployments")
        if dynamic > REGIONS:
            raise CommandError(
                f"at most {REGIONS} dynamic deployments (one per region)"
            )

        started = time.perf_counter()
        skip_triggers = not options["check_foreign_keys"] and self._is_superuser()
        if skip_triggers:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")
        try:
            self._generate(options, started)
        finally:
            if skip_triggers:
                with connection.cursor() as cursor:
                    cursor.execute("RESET session_replication_role")

    def _is_superuser(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            row = cursor.fetchone()
        return bool(row and row[0])

    def _generate(self, options: dict[str, Any], started: float) -> None:
        devices, deployments = options["devices"], options["deployments"]
        dynamic, groups, idle = options["dynamic"], options["groups"], options["idle"]
        prefix = options["prefix"]
        with transaction.atomic():
            insert_devices(count=devices, prefix=prefix, groups=groups, idle=idle)
        self._step(f"{devices} devices in {groups} groups ({idle} idle)", started)
        if options["tokens"]:
            step = time.perf_counter()
            with transaction.atomic():
                issued = insert_tokens(prefix=prefix, path=options["tokens"])
            self._step(f"{issued} device tokens → {options['tokens']}", step)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        if deployments:
            step = time.perf_counter()
            releases = create_releases(prefix=prefix, count=deployments)
            # One expansion batch per deployment: a single INSERT … SELECT each.
            with (
                eager_tasks(),
                override_settings(FLOTILLA_EXPANSION_BATCH_SIZE=devices + 1),
            ):
                static, dynamic_made = create_deployments(
                    prefix=prefix, releases=releases, dynamic=dynamic, groups=groups
                )
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            self._step(
                f"{static} static + {dynamic_made} dynamic deployments (expanded, filters evaluated)",
                step,
            )
        self._step("fleet ready", started)

    def _step(self, message: str, since: float) -> None:
        self.stdout.write(f"{message}: {time.perf_counter() - since:.1f} s")
