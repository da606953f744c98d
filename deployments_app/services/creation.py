"""Creating deployments and expanding their static target sets into device deployments."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from deployments_app import dispatch
from deployments_app.exceptions import (
    DuplicateActiveDeployment,
    InvalidDeployment,
    NoArtifactForDeployment,
)
from deployments_app.locks import deployment_qs_for_update
from deployments_app.models import (
    Artifact,
    Deployment,
    DeploymentPhase,
    TargetKind,
)
from deployments_app.sql import insert_pending_records
from deployments_app.states import DeploymentStatus
from devices_app.filtering import parse_terms
from devices_app.models import Device
from devices_app.selectors import (
    count_devices_matching_terms,
    device_group_names,
    get_device_filter,
)
from devices_app.services.groups import accepted_devices_sql, group_members_as_of_sql
from devices_app.states import DeviceStatus


@dataclass(frozen=True)
class PhaseRequest:
    batch_size: int | None
    start_ts: dt.datetime | None


def _constructor_checksum(**constructor: Any) -> str:
    canonical = json.dumps(constructor, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _parse_device_ids(devices: list[Any]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for entry in devices:
        if not isinstance(entry, str) or not entry:
            raise InvalidDeployment("devices: every entry must be a non-empty string")
        try:
            ids.append(uuid.UUID(entry))
        except ValueError:
            raise InvalidDeployment(
                f"devices: {entry!r} is not a valid device id"
            ) from None
    return list(dict.fromkeys(ids))


def target_devices_sql(
    deployment: Deployment, *, after: uuid.UUID | None = None
) -> tuple[str, list[Any]]:
    """SQL selecting ``device_id`` of the static target set, as it was at the creation instant.

    ``after``: only devices with a greater id (the expansion's keyset cursor).
    """
    if deployment.target_kind == TargetKind.GROUP:
        return group_members_as_of_sql(
            group_name=deployment.group_name, as_of=deployment.created, after=after
        )
    if deployment.target_kind == TargetKind.ALL:
        sql, params = accepted_devices_sql(after=after)
        return (
            f"SELECT t.device_id FROM ({sql}) t JOIN {Device._meta.db_table} d ON d.id = t.device_id "
            "WHERE d.created_ts <= %s",
            [*params, deployment.created],
        )
    device_ids = [str(device_id) for device_id in deployment.device_list]
    if after is not None:
        device_ids = [
            device_id for device_id in device_ids if uuid.UUID(device_id) > after
        ]
    return (
        f"SELECT d.id AS device_id FROM {Device._meta.db_table} d "
        "WHERE d.id = ANY(%s::uuid[]) AND d.status = %s",
        [device_ids, DeviceStatus.ACCEPTED],
    )


def _targets_now(target_kind: str, group_name: str | None, *, count: bool) -> int:
    """How many devices the group / all-devices target has now (count=False: 0 or 1, cheaply)."""
    probe = Deployment(
        target_kind=target_kind, group_name=group_name or "", created=timezone.now()
    )
    sql, params = target_devices_sql(probe)
    # EXISTS stops at the first device: creation stays fast for groups of any size.
    probe_sql = (
        f"SELECT count(*) FROM ({sql}) targets"
        if count
        else f"SELECT EXISTS ({sql})::int"
    )
    with connection.cursor() as cursor:
        cursor.execute(probe_sql, params)
        (targets,) = cursor.fetchone()
    return int(targets)


def phase_capacities(batch_sizes: list[int | None], total: int) -> list[int]:
    """Devices per phase (spec §1.12): floor(percent × N), the last phase gets the rest; no empty batch."""
    counts = [
        math.floor(size * total / 100) for size in batch_sizes[:-1] if size is not None
    ]
    counts.append(total - sum(counts))
    for number, count in enumerate(counts, start=1):
        if count <= 0:
            raise InvalidDeployment(
                "Attempt to create a batch with zero devices not allowed. "
                f"Batch: ({number}) will be empty"
            )
    return counts


def _validate_phases(
    phases: list[PhaseRequest], now: dt.datetime
) -> list[PhaseRequest]:
    if not phases:
        return []
    if (
        len(phases) == 1
        and phases[0].batch_size in (None, 100)
        and phases[0].start_ts is None
    ):
        return []  # a single empty phase is a regular deployment
    previous_start = None
    total_percent = 0
    for number, phase in enumerate(phases, start=1):
        is_last = number == len(phases)
        if phase.batch_size is None and not is_last:
            raise InvalidDeployment(
                f"phase {number}: batch_size is required except for the last phase"
            )
        if phase.batch_size is not None and not 1 <= phase.batch_size <= 100:
            raise InvalidDeployment(
                f"phase {number}: batch_size must be between 1 and 100"
            )
        if phase.start_ts is None and number > 1:
            raise InvalidDeployment(
                f"phase {number}: start_ts is required after the first phase"
            )
        start = phase.start_ts or now
        if previous_start is not None and start <= previous_start:
            raise InvalidDeployment(
                f"phase {number}: start_ts must be later than the previous phase's"
            )
        previous_start = start
        total_percent += phase.batch_size or 0
    if total_percent > 100 or (
        phases[-1].batch_size is not None and total_percent != 100
    ):
        raise InvalidDeployment("phase batch sizes must add up to 100")
    return phases


def create_deployment(
    *,
    name: str,
    artifact_name: str,
    devices: list[Any] | None = None,
    all_devices: bool = False,
    group: str | None = None,
    filter_id: uuid.UUID | None = None,
    force_installation: bool = False,
    phases: list[PhaseRequest] | None = None,
    retries: int = 0,
    max_devices: int | None = None,
    created_by: Any = None,
) -> Deployment:
    """Validate and store a deployment (spec §1.8, §1.12); a worker expands static targets after commit."""
    now = timezone.now()
    chosen = [bool(devices), all_devices, group is not None, filter_id is not None]
    if sum(chosen) != 1:
        raise InvalidDeployment(
            "give exactly one target: devices, all_devices, a group or a filter"
        )
    device_ids = _parse_device_ids(devices or [])
    if filter_id is not None:
        target_kind = TargetKind.DYNAMIC
    elif group is not None:
        target_kind = TargetKind.GROUP
    elif all_devices:
        target_kind = TargetKind.ALL
    else:
        target_kind = TargetKind.DEVICES

    phase_requests = _validate_phases(phases or [], now)
    filter_snapshot, target_count = None, len(device_ids)
    if filter_id is not None:  # the dynamic target kind
        device_filter = get_device_filter(filter_id=filter_id)
        filter_snapshot = {
            "id": str(device_filter.id),
            "name": device_filter.name,
            "terms": device_filter.terms,
        }
        # The inventory as it is now, not the membership a worker may still be computing.
        target_count = count_devices_matching_terms(
            terms=parse_terms(device_filter.terms)
        )
        if phase_requests and target_count == 0:
            raise InvalidDeployment(
                "No devices for the deployment: a phased deployment needs matching devices"
            )
    elif target_kind in (TargetKind.GROUP, TargetKind.ALL):
        # Phases need N; otherwise the worker counts while it expands.
        target_count = _targets_now(target_kind, group, count=bool(phase_requests))
        if target_count == 0:
            raise InvalidDeployment("No devices for the deployment")

    artifact_ids = list(
        Artifact.objects.filter(name=artifact_name).values_list("id", flat=True)
    )
    if not artifact_ids:
        raise NoArtifactForDeployment("No artifact for the deployment")

    capacities = (
        phase_capacities([p.batch_size for p in phase_requests], target_count)
        if phase_requests
        else []
    )
    groups = [group] if group else []
    if target_kind == TargetKind.DEVICES and len(device_ids) == 1:
        groups = device_group_names(device_id=device_ids[0])
    deployment = Deployment(
        name=name,
        artifact_name=artifact_name,
        created=now,
        status=_initial_status(phase_requests, now),
        is_phased=bool(phase_requests),
        target_kind=target_kind,
        group_name=group or "",
        groups=groups,
        device_list=device_ids,
        all_devices=all_devices,
        force_installation=force_installation,
        # Static: the expansion sets it to the number of targets.
        max_devices=(max_devices or 0) if target_kind == TargetKind.DYNAMIC else 0,
        artifacts=artifact_ids,
        retries=retries,
        filter_id=filter_id,
        filter_snapshot=filter_snapshot,
        initial_device_count=target_count
        if target_kind == TargetKind.DYNAMIC
        else None,
        constructor_checksum=_constructor_checksum(
            name=name,
            artifact_name=artifact_name,
            devices=sorted(str(d) for d in device_ids),
            all_devices=all_devices,
            group=group,
            filter_id=str(filter_id) if filter_id else None,
            force_installation=force_installation,
        ),
        expanded_at=now if target_kind == TargetKind.DYNAMIC else None,
        created_by=created_by,
    )
    try:
        with transaction.atomic():
            deployment.save(force_insert=True)
            _create_phases(deployment, phase_requests, capacities, now)
            if target_kind != TargetKind.DYNAMIC:
                dispatch.expand_deployment_on_commit(deployment.pk)
    except IntegrityError:
        raise DuplicateActiveDeployment(
            "there is already an active deployment with the same parameters"
        ) from None
    return deployment


def _initial_status(phases: list[PhaseRequest], now: dt.datetime) -> DeploymentStatus:
    first_start = phases[0].start_ts if phases else None
    if first_start is not None and first_start > now:
        return DeploymentStatus.SCHEDULED
    return DeploymentStatus.PENDING


def _create_phases(
    deployment: Deployment,
    phases: list[PhaseRequest],
    capacities: list[int],
    now: dt.datetime,
) -> None:
    last = len(phases)
    DeploymentPhase.objects.bulk_create(
        DeploymentPhase(
            deployment=deployment,
            number=number,
            batch_size=phase.batch_size
            if phase.batch_size is not None
            else 100 - sum(p.batch_size or 0 for p in phases[:-1]),
            start_ts=phase.start_ts or now,
            # The last phase of a dynamic deployment takes every later joiner.
            capacity=None if (number == last and deployment.is_dynamic) else capacity,
        )
        for number, (phase, capacity) in enumerate(
            zip(phases, capacities, strict=True), start=1
        )
    )


def expand_deployment(
    *, deployment_id: uuid.UUID, batch_size: int | None = None
) -> int:
    """Insert one pending device deployment per static target, set-based, in resumable batches.

    Each batch commits with the cursor, so a worker killed mid-way resumes where the last
    batch ended; ON CONFLICT makes a repeated batch harmless. Returns rows inserted now.
    """
    batch_size = batch_size or settings.FLOTILLA_EXPANSION_BATCH_SIZE
    inserted_total = 0
    while True:
        with transaction.atomic():
            deployment = deployment_qs_for_update().filter(pk=deployment_id).first()
            if deployment is None or deployment.expanded_at is not None:
                return inserted_total
            if deployment.is_finished:
                Deployment.objects.filter(pk=deployment.pk).update(
                    expanded_at=timezone.now()
                )
                return inserted_total
            selected, inserted, last_device = _expand_batch(deployment, batch_size)
            inserted_total += inserted
            is_done = selected < batch_size
            device_count = deployment.device_count + inserted
            Deployment.objects.filter(pk=deployment.pk).update(
                expansion_cursor=last_device or deployment.expansion_cursor,
                device_count=device_count,
                max_devices=device_count,
                expanded_at=timezone.now() if is_done else None,
            )
            if is_done:
                # A target set whose devices are all gone, or already final, finishes now.
                dispatch.finalise_deployment_on_commit(deployment.pk)
                return inserted_total


def _expand_batch(
    deployment: Deployment, batch_size: int
) -> tuple[int, int, uuid.UUID | None]:
    targets_sql, params = target_devices_sql(
        deployment, after=deployment.expansion_cursor
    )
    pending = insert_pending_records(
        source_sql=f"SELECT %s::uuid AS deployment_id, t.device_id, %s::timestamptz AS created "
        f"FROM ({targets_sql}) t ORDER BY t.device_id LIMIT %s",
        params=[str(deployment.pk), deployment.created, *params, batch_size],
    )
    return pending.selected, pending.inserted, pending.last_device_id


def expand_unexpanded_deployments(*, older_than: dt.timedelta, limit: int) -> list[str]:
    """Ids of deployments still unexpanded after ``older_than`` (e.g. the broker was down)."""
    cutoff = timezone.now() - older_than
    return [
        str(pk)
        for pk in Deployment.objects.unexpanded()
        .filter(created__lt=cutoff)
        .order_by("created")
        .values_list("pk", flat=True)[:limit]
    ]
