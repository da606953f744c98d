"""The only writers of Deployment.status and DeviceDeployment.status."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from deployments_app import dispatch
from deployments_app.exceptions import (
    DeploymentAborted,
    DeploymentAlreadyFinished,
    DeploymentNotFound,
    DeviceDeploymentNotFound,
    FinalStatusLocked,
    InvalidStatusReport,
)
from deployments_app.locks import deployment_qs_for_update
from deployments_app.models import Deployment, DeviceDeployment, TargetKind
from deployments_app.states import (
    ACTIVE_STATUSES,
    DEVICE_REPORTABLE_STATUSES,
    FINAL_STATUSES,
    NOT_STARTED_STATUSES,
    DeploymentStatus,
    DeviceDeploymentStatus,
    can_transition_deployment,
    can_transition_device_deployment,
)

MAX_SUBSTATE_LENGTH = 200
_CAS_ATTEMPTS = 5


def set_deployment_status(
    *,
    deployment_ids: Iterable[uuid.UUID],
    to: str,
    only_from: Iterable[str] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Move deployments to ``to`` where that is legal from their current status (compare-and-set).

    ``only_from`` narrows the sources further. Finishing stamps ``finished``. Returns rows changed.
    """
    allowed_from = {
        s for s in DeploymentStatus.values if can_transition_deployment(s, to)
    }
    if only_from is not None:
        allowed_from &= set(only_from)
    changes: dict[str, Any] = {"status": to}
    if to == DeploymentStatus.FINISHED:
        changes["finished"] = now or timezone.now()
    return Deployment.objects.filter(
        pk__in=list(deployment_ids), status__in=allowed_from
    ).update(**changes)


def write_device_deployment_status(
    *,
    device_deployment: DeviceDeployment,
    to: str,
    substate: str = "",
    now: dt.datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Compare-and-set one record from its loaded status to ``to``; False if it changed meanwhile.

    Follow-ups ride on the same transaction: the deployment turns inprogress on the first
    progress, and a final status schedules finalisation after commit.
    """
    now = now or timezone.now()
    current = device_deployment.status
    changes: dict[str, Any] = {"status": to, **(extra or {})}
    if substate:
        changes["substate"] = substate
    if (
        current == DeviceDeploymentStatus.PENDING
        and to != DeviceDeploymentStatus.PENDING
    ):
        changes["started"] = now
    if to in FINAL_STATUSES:
        changes["finished"] = now
    updated = DeviceDeployment.objects.filter(
        pk=device_deployment.pk, status=current
    ).update(**changes)
    if not updated:
        return False
    for field, value in changes.items():
        setattr(device_deployment, field, value)
    _after_device_status_change(device_deployment, to)
    return True


def _after_device_status_change(device_deployment: DeviceDeployment, to: str) -> None:
    # The record's deployment is loaded by every caller: skip the write once it runs.
    deployment = device_deployment.deployment
    if to not in NOT_STARTED_STATUSES and deployment.status in (
        DeploymentStatus.PENDING,
        DeploymentStatus.SCHEDULED,
    ):
        set_deployment_status(
            deployment_ids=[deployment.pk], to=DeploymentStatus.INPROGRESS
        )
    if to in FINAL_STATUSES:
        dispatch.finalise_deployment_on_commit(deployment.pk)


def report_device_deployment_status(
    *, device_id: uuid.UUID, deployment_id: uuid.UUID, status: str, substate: str = ""
) -> DeviceDeployment:
    """A device's status report (spec §2.3), with retries turning early failures back to pending."""
    if status not in DEVICE_REPORTABLE_STATUSES:
        raise InvalidStatusReport(f"invalid status: {status}")
    if len(substate) > MAX_SUBSTATE_LENGTH:
        raise InvalidStatusReport(
            f"substate longer than {MAX_SUBSTATE_LENGTH} characters"
        )
    for _ in range(_CAS_ATTEMPTS):
        with transaction.atomic():
            record = _current_record(device_id=device_id, deployment_id=deployment_id)
            if record.status == status:
                return record  # devices repeat reports; a repeat changes nothing, not even substate
            if record.status in FINAL_STATUSES:
                raise FinalStatusLocked(
                    f"device deployment already finished: {record.status}"
                )
            to, extra = status, None
            if (
                status == DeviceDeploymentStatus.FAILURE
                and record.attempts <= record.deployment.retries
            ):
                # A retry is left: offer the same deployment again on the next poll.
                to, extra = (
                    DeviceDeploymentStatus.PENDING,
                    {"attempts": record.attempts + 1},
                )
            if not can_transition_device_deployment(record.status, to):
                raise InvalidStatusReport(
                    f"cannot change status from {record.status} to {to}"
                )
            if write_device_deployment_status(
                device_deployment=record, to=to, substate=substate, extra=extra
            ):
                return record
    raise FinalStatusLocked("device deployment changed concurrently; retry")


def _current_record(
    *, device_id: uuid.UUID, deployment_id: uuid.UUID
) -> DeviceDeployment:
    record = (
        DeviceDeployment.objects.live()
        .select_related("deployment")
        .filter(device_id=device_id, deployment_id=deployment_id)
        .first()
    )
    if record is None:
        raise DeviceDeploymentNotFound("deployment not found for this device")
    if record.status == DeviceDeploymentStatus.ABORTED:
        raise DeploymentAborted("deployment aborted")
    if record.status == DeviceDeploymentStatus.DECOMMISSIONED:
        raise DeploymentAborted("device decommissioned")
    return record


def abort_deployment(*, deployment_id: uuid.UUID) -> None:
    """Abort every unfinished device deployment (pending ones too) and finish the deployment."""
    now = timezone.now()
    with transaction.atomic():
        deployment = deployment_qs_for_update().filter(pk=deployment_id).first()
        if deployment is None:
            raise DeploymentNotFound("deployment not found")
        if deployment.is_finished:
            raise DeploymentAlreadyFinished("deployment already finished")
        DeviceDeployment.objects.active().filter(deployment_id=deployment_id).update(
            status=DeviceDeploymentStatus.ABORTED, finished=now
        )
        set_deployment_status(
            deployment_ids=[deployment_id], to=DeploymentStatus.FINISHED, now=now
        )


def finish_device_records(*, device_id: uuid.UUID, to: str) -> set[uuid.UUID]:
    """Set-based: every unfinished record of the device in an unfinished deployment becomes ``to``.

    Used for device abort and decommissioning. Returns the deployments touched, each of which
    may now finish.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {DeviceDeployment._meta.db_table} dd SET status = %s, finished = %s
            FROM {Deployment._meta.db_table} d
            WHERE dd.deployment_id = d.id AND dd.device_id = %s::uuid AND dd.deleted IS NULL
              AND dd.status = ANY(%s) AND d.status <> %s
            RETURNING dd.deployment_id
            """,
            [
                to,
                timezone.now(),
                str(device_id),
                sorted(ACTIVE_STATUSES),
                DeploymentStatus.FINISHED,
            ],
        )
        deployment_ids = {row[0] for row in cursor.fetchall()}
    if to not in NOT_STARTED_STATUSES:
        set_deployment_status(
            deployment_ids=deployment_ids, to=DeploymentStatus.INPROGRESS
        )
    for deployment_id in deployment_ids:
        dispatch.finalise_deployment_on_commit(deployment_id)
    return deployment_ids


def finalise_deployment(*, deployment_id: uuid.UUID) -> str | None:
    """Finish the deployment if its rule says so (spec §1.9); return its resulting status."""
    with transaction.atomic():
        deployment = deployment_qs_for_update().filter(pk=deployment_id).first()
        if deployment is None:
            return None
        if deployment.is_finished:
            return deployment.status
        if _is_complete(deployment):
            set_deployment_status(
                deployment_ids=[deployment.pk], to=DeploymentStatus.FINISHED
            )
            return DeploymentStatus.FINISHED
        return deployment.status


def _is_complete(deployment: Deployment) -> bool:
    records = DeviceDeployment.objects.filter(deployment_id=deployment.pk)
    if deployment.target_kind == TargetKind.DYNAMIC:
        if not deployment.max_devices:
            return False  # an unbounded dynamic deployment only ends by abort
        return records.final().count() >= deployment.max_devices
    if deployment.expanded_at is None:
        return False
    return not records.active().exists()


def finalise_due_deployments(*, limit: int) -> int:
    """Backstop sweep: finish up to ``limit`` unfinished, fully expanded static deployments with no active device."""
    active_rows = DeviceDeployment.objects.active().filter(deployment_id=OuterRef("pk"))
    due = list(
        Deployment.objects.unfinished()
        .exclude(target_kind=TargetKind.DYNAMIC)
        .filter(expanded_at__isnull=False)
        .filter(~Exists(active_rows))
        .order_by("created")
        .values_list("pk", flat=True)[:limit]
    )
    dynamic_capped = list(
        Deployment.objects.unfinished()
        .filter(target_kind=TargetKind.DYNAMIC, max_devices__gt=0)
        .order_by("created")
        .values_list("pk", flat=True)[:limit]
    )
    finished = 0
    for deployment_id in [*due, *dynamic_capped]:
        if (
            finalise_deployment(deployment_id=deployment_id)
            == DeploymentStatus.FINISHED
        ):
            finished += 1
    return finished
