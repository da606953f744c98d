"""Device-level changes to deployments: decommission, device abort, history reset (spec §1.14, §2.7)."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from deployments_app.models import Deployment, DeviceDeployment
from deployments_app.services.assignment import materialise_unexpanded_targets
from deployments_app.services.transitions import finish_device_records
from deployments_app.states import (
    FINAL_STATUSES,
    DeploymentStatus,
    DeviceDeploymentStatus,
)


def _finish_device_records(device_id: Any, to: str) -> int:
    """Every unfinished record of the device becomes ``to``; unexpanded static targets included.

    Static deployments listing the device can then finish: unexpanded ones get the device's
    row first so the outcome is recorded there too.
    """
    materialise_unexpanded_targets(device_id, after=None)
    return len(finish_device_records(device_id=device_id, to=to))


@transaction.atomic
def decommission_device_deployments(*, device_id: Any) -> int:
    """The decommissioned device's unfinished records become ``decommissioned``; returns how many."""
    return _finish_device_records(device_id, DeviceDeploymentStatus.DECOMMISSIONED)


@transaction.atomic
def abort_device_deployments(*, device_id: Any) -> int:
    """``DELETE /deployments/devices/{id}``: the device's unfinished records become ``aborted``."""
    return _finish_device_records(device_id, DeviceDeploymentStatus.ABORTED)


@transaction.atomic
def reset_device_deployment_history(*, device_id: Any) -> int:
    """Logically delete the device's finished records so it is eligible again (spec §1.14).

    Active static deployments it had finished get a fresh target row for it; dynamic ones
    admit it again when it next matches. Returns how many records were reset.
    """
    now = timezone.now()
    table = DeviceDeployment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH reset AS (
                UPDATE {table} SET deleted = %s
                WHERE device_id = %s::uuid AND deleted IS NULL AND status = ANY(%s)
                RETURNING deployment_id, created
            ), reopened AS (
                INSERT INTO {table} (id, deployment_id, device_id, status, substate, created, attempts, has_log)
                SELECT gen_random_uuid(), r.deployment_id, %s::uuid, 'pending', '', r.created, 0, false
                FROM reset r JOIN {Deployment._meta.db_table} d ON d.id = r.deployment_id
                WHERE d.status <> %s AND d.target_kind <> 'dynamic'
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM reset), (SELECT count(*) FROM reopened)
            """,
            [
                now,
                str(device_id),
                sorted(FINAL_STATUSES),
                str(device_id),
                DeploymentStatus.FINISHED,
            ],
        )
        reset_count, _ = cursor.fetchone()
    return reset_count
