"""Device-level changes to deployments: decommission, device abort, history reset (spec §1.14, §2.7)."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from deployments_app.locks import device_deployment_qs_for_update
from deployments_app.models import Deployment, DeviceDeployment, TargetKind
from deployments_app.services.assignment import materialise_unexpanded_targets
from deployments_app.services.transitions import finish_device_records
from deployments_app.sql import insert_pending_records
from deployments_app.states import DeploymentStatus, DeviceDeploymentStatus


def _finish_device_records(device_id: uuid.UUID, to: str) -> int:
    """Every unfinished record of the device becomes ``to``; unexpanded static targets included.

    Static deployments listing the device can then finish: unexpanded ones get the device's
    row first so the outcome is recorded there too.
    """
    materialise_unexpanded_targets(device_id, after=None)
    return len(finish_device_records(device_id=device_id, to=to))


@transaction.atomic
def decommission_device_deployments(*, device_id: uuid.UUID) -> int:
    """The decommissioned device's unfinished records become ``decommissioned``; returns how many."""
    return _finish_device_records(device_id, DeviceDeploymentStatus.DECOMMISSIONED)


@transaction.atomic
def abort_device_deployments(*, device_id: uuid.UUID) -> int:
    """``DELETE /deployments/devices/{id}``: the device's unfinished records become ``aborted``."""
    return _finish_device_records(device_id, DeviceDeploymentStatus.ABORTED)


@transaction.atomic
def reset_device_deployment_history(*, device_id: uuid.UUID) -> int:
    """Logically delete the device's finished records so it is eligible again (spec §1.14).

    Active static deployments it had finished get a fresh target row for it; dynamic ones
    admit it again when it next matches. Returns how many records were reset.
    """
    reset = list(
        device_deployment_qs_for_update()
        .live()
        .final()
        .filter(device_id=device_id)
        .values_list("pk", "deployment_id", "created")
    )
    if not reset:
        return 0
    DeviceDeployment.objects.filter(pk__in=[pk for pk, _, _ in reset]).update(
        deleted=timezone.now()
    )
    insert_pending_records(
        source_sql="SELECT d.id AS deployment_id, %s::uuid AS device_id, r.created "
        "FROM unnest(%s::uuid[], %s::timestamptz[]) AS r(deployment_id, created) "
        f"JOIN {Deployment._meta.db_table} d ON d.id = r.deployment_id "
        "WHERE d.status <> %s AND d.target_kind <> %s",
        params=[
            str(device_id),
            [deployment_id for _, deployment_id, _ in reset],
            [created for _, _, created in reset],
            DeploymentStatus.FINISHED.value,
            TargetKind.DYNAMIC.value,
        ],
    )
    return len(reset)
