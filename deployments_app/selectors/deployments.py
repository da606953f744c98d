"""Read functions for deployments and device deployments (statistics are derived from rows)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from deployments_app.exceptions import (
    DeploymentNotFound,
    DeviceDeploymentNotFound,
)
from deployments_app.models import (
    Deployment,
    DeviceDeployment,
    DeviceDeploymentLog,
    TargetKind,
)
from deployments_app.states import DeviceDeploymentStatus

# Every device deployment status has a counter, zero when no record has it.
STATISTICS_KEYS = list(DeviceDeploymentStatus.values)
_COUNTS_SIZE = (
    DeviceDeploymentStatus.NOARTIFACT,
    DeviceDeploymentStatus.ALREADY_INSTALLED,
)


def get_deployment(*, deployment_id: uuid.UUID) -> Deployment:
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None:
        raise DeploymentNotFound("deployment not found")
    return deployment


def deployment_statistics(
    *, deployment_ids: Iterable[uuid.UUID]
) -> dict[str, dict[str, Any]]:
    """Counters per device-deployment status and total_size, for several deployments in one query.

    Derived from the records (index on deployment, status) instead of counter columns, so
    thousands of devices reporting at once never queue on one hot counter row.
    """
    ids = [str(deployment_id) for deployment_id in deployment_ids]
    stats: dict[str, dict[str, Any]] = {
        deployment_id: {"status": dict.fromkeys(STATISTICS_KEYS, 0), "total_size": 0}
        for deployment_id in ids
    }
    rows = (
        DeviceDeployment.objects.live()
        .filter(deployment_id__in=ids)
        .values("deployment_id", "status")
        .annotate(
            count=Count("id"),
            size=Sum("artifact_size", filter=~Q(status__in=_COUNTS_SIZE)),
        )
    )
    for row in rows:
        entry = stats[str(row["deployment_id"])]
        entry["status"][row["status"]] = row["count"]
        entry["total_size"] += row["size"] or 0
    return stats


def list_deployments(
    *,
    statuses: list[str] | None = None,
    search: str | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    newest_first: bool = True,
) -> QuerySet[Deployment]:
    deployments = Deployment.objects.all()
    if statuses:
        deployments = deployments.filter(status__in=statuses)
    if search:
        deployments = deployments.filter(
            Q(name__icontains=search) | Q(artifact_name__icontains=search)
        )
    if created_after is not None:
        deployments = deployments.filter(created__gte=created_after)
    if created_before is not None:
        deployments = deployments.filter(created__lte=created_before)
    order = ("-created", "-id") if newest_first else ("created", "id")
    return deployments.order_by(*order)


def list_deployment_devices(
    *, deployment_id: uuid.UUID, statuses: Iterable[str] | None = None
) -> QuerySet[DeviceDeployment]:
    """The deployment's device records, sorted by status then device id."""
    records = DeviceDeployment.objects.live().filter(deployment_id=deployment_id)
    if statuses is not None:
        records = records.filter(status__in=list(statuses))
    return records.order_by("status", "device_id")


def deployment_target_ids(*, deployment: Deployment) -> list[str]:
    """The static target list (explicit list, or the expanded group / all-devices set)."""
    if deployment.target_kind == TargetKind.DEVICES:
        return [str(device_id) for device_id in deployment.device_list]
    if deployment.target_kind == TargetKind.DYNAMIC:
        return []
    return [
        str(device_id)
        for device_id in DeviceDeployment.objects.filter(deployment_id=deployment.pk)
        .order_by("device_id")
        .values_list("device_id", flat=True)
        .distinct()
    ]


def device_deployment_history(
    *, device_id: uuid.UUID, statuses: Iterable[str] | None = None
) -> QuerySet[DeviceDeployment]:
    """A device's records across deployments, newest first (logically deleted ones included)."""
    records = DeviceDeployment.objects.select_related("deployment").filter(
        device_id=device_id
    )
    if statuses is not None:
        records = records.filter(status__in=list(statuses))
    return records.order_by("-created", "-deployment_id")


def get_device_deployment_log(
    *, deployment_id: uuid.UUID, device_id: uuid.UUID
) -> list[dict[str, str]]:
    log = (
        DeviceDeploymentLog.objects.filter(
            device_deployment__deployment_id=deployment_id,
            device_deployment__device_id=device_id,
            device_deployment__deleted__isnull=True,
        )
        .only("messages")
        .first()
    )
    if log is None:
        raise DeviceDeploymentNotFound("no log for this device and deployment")
    messages: list[dict[str, str]] = log.messages
    return messages
