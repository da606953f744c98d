"""The device poll: which deployment (and artifact) a device gets next (spec §2.4-2.6)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from config.errors import InvalidInput
from deployments_app.exceptions import ConflictingRequest, InvalidStatusReport
from deployments_app.locks import phase_qs_for_update
from deployments_app.models import (
    Artifact,
    Deployment,
    DeploymentPhase,
    DeviceDeployment,
    TargetKind,
)
from deployments_app.services.artifacts import artifact_snapshot
from deployments_app.services.creation import target_devices_sql
from deployments_app.services.transitions import write_device_deployment_status
from deployments_app.sql import insert_pending_records
from deployments_app.states import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    DeploymentStatus,
    DeviceDeploymentStatus,
)
from devices_app.models import Device, DeviceFilter, FilterMembership
from devices_app.selectors import unevaluated_filters_matching_device
from devices_app.services.inventory import merge_device_inventory

MAX_ATTRIBUTE_LENGTH = 4096
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollRequest:
    """What the device says it runs: from the v2 POST, the v1 POST or the v1 GET."""

    artifact_name: str
    device_type: str
    provides: dict[str, str]

    def as_stored(self) -> dict[str, Any]:
        return {
            "artifact_name": self.artifact_name,
            "device_type": self.device_type,
            "provides": self.provides,
        }


@dataclass(frozen=True)
class Instructions:
    deployment_id: str
    artifact: Artifact


def build_poll_request(
    *, artifact_name: Any, device_type: Any, provides: dict[str, Any]
) -> PollRequest:
    """Validate the poll's inputs (400 on missing or oversize values)."""
    for label, value in (
        ("artifact_name", artifact_name),
        ("device_type", device_type),
    ):
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_ATTRIBUTE_LENGTH:
            raise InvalidStatusReport(
                f"{label} must be a string of 1..{MAX_ATTRIBUTE_LENGTH} characters"
            )
    clean: dict[str, str] = {}
    for key, value in provides.items():
        if key in ("artifact_name", "device_type"):
            continue
        if (
            not isinstance(value, str)
            or len(value) > MAX_ATTRIBUTE_LENGTH
            or len(key) > MAX_ATTRIBUTE_LENGTH
        ):
            raise InvalidStatusReport(
                f"provides: {key!r} must be a string of at most {MAX_ATTRIBUTE_LENGTH} characters"
            )
        clean[key] = value
    return PollRequest(
        artifact_name=artifact_name, device_type=device_type, provides=clean
    )


def assign_next_deployment(
    *, device_id: uuid.UUID, request: PollRequest
) -> Instructions | None:
    """Return the deployment the device should install now, or None (204).

    1. resume the device's oldest admitted active record;
    2. else pick the oldest active deployment created after the deployment of its newest final
       record that targets it, and admit it (phase capacity, max_devices);
    3. check the request against the stored one (409), assign an artifact (or noartifact),
       detect already-installed; only then hand out instructions.
    """
    overview = _poll_overview(device_id)
    if _record_reported_inventory(device_id, request, current=overview.inventory):
        # The device's saved-filter memberships may have changed with its inventory.
        overview = _poll_overview(device_id)
    if not overview.has_work:
        return None  # the common poll: two indexed reads (token, overview), no write
    resumed = _resumed_instructions(overview.active, request)
    if resumed is not None:
        return resumed  # a repeated poll: no further query
    record = _active_admitted_record(device_id) if overview.active else None
    if record is None:
        record = _admit_next(device_id, request, overview)
        if record is None:
            return None
    elif record.request is not None and record.request != request.as_stored():
        with transaction.atomic():
            write_device_deployment_status(
                device_deployment=record, to=DeviceDeploymentStatus.FAILURE
            )
        raise ConflictingRequest("Device provided conflicting request data")
    if record.artifact_id is None:
        artifact = select_artifact(deployment=record.deployment, request=request)
        if artifact is None:
            with transaction.atomic():
                write_device_deployment_status(
                    device_deployment=record, to=DeviceDeploymentStatus.NOARTIFACT
                )
            return None
        _assign_artifact(record, artifact)
    artifact = record.artifact
    assert artifact is not None  # assigned just above or when the record was admitted
    if (
        not record.deployment.force_installation
        and record.status == DeviceDeploymentStatus.PENDING
        and request.artifact_name == artifact.name
    ):
        with transaction.atomic():
            write_device_deployment_status(
                device_deployment=record, to=DeviceDeploymentStatus.ALREADY_INSTALLED
            )
        return None
    return Instructions(deployment_id=str(record.deployment_id), artifact=artifact)


def _record_reported_inventory(
    device_id: uuid.UUID, request: PollRequest, *, current: dict[str, Any]
) -> bool:
    """Store what the poll reports in the device's inventory; True if that changed anything."""
    reported = {
        "artifact_name": request.artifact_name,
        "device_type": request.device_type,
        **request.provides,
    }
    if all(current.get(name) == value for name, value in reported.items()):
        return False
    try:
        return merge_device_inventory(device_id=device_id, attributes=reported)
    except InvalidInput as exc:
        # A full or stricter inventory must not stop the device from getting its update.
        logger.warning(
            "poll of %s: reported attributes not stored: %s", device_id, exc.message
        )
        return False


@dataclass(frozen=True)
class ActiveRecord:
    """The device's oldest admitted active record, as the overview reads it."""

    deployment_id: uuid.UUID
    status: str
    request: dict[str, Any] | None
    force_installation: bool
    artifact: Artifact | None


@dataclass(frozen=True)
class PollOverview:
    inventory: dict[str, Any]
    newest_final: dt.datetime | None
    active: ActiveRecord | None
    has_unexpanded: bool
    has_candidate: bool

    @property
    def has_work(self) -> bool:
        return self.active is not None or self.has_unexpanded or self.has_candidate


def _poll_overview(device_id: uuid.UUID) -> PollOverview:
    """One round trip with everything a poll needs to decide in the common cases.

    The device's inventory, its oldest admitted active record with the assigned artifact
    (a repeated poll is answered from this alone), the ordering cut-off (creation time of its
    newest final record) and EXISTS probes, on the partial indexes, for unexpanded static
    deployments, a static target row and a matching dynamic deployment.
    """
    records = DeviceDeployment._meta.db_table
    deployments = Deployment._meta.db_table
    artifacts = Artifact._meta.db_table
    sql = f"""
        WITH newest_final AS (
            SELECT max(created) AS created FROM {records}
            WHERE device_id = %(device)s AND deleted IS NULL AND status = ANY(%(final)s)
        ), active AS (
            SELECT r.deployment_id, r.status, r.request, r.artifact_id, d.force_installation,
                   a.name, a.device_types_compatible, a.file, a.size
            FROM {records} r
            JOIN {deployments} d ON d.id = r.deployment_id
            LEFT JOIN {artifacts} a ON a.id = r.artifact_id
            WHERE r.device_id = %(device)s AND r.deleted IS NULL AND r.status = ANY(%(active)s)
              AND r.admitted_at IS NOT NULL
            ORDER BY r.created, r.deployment_id
            LIMIT 1
        )
        SELECT
            (SELECT inventory FROM {Device._meta.db_table} WHERE id = %(device)s),
            f.created,
            EXISTS (
                SELECT 1 FROM {deployments} d
                WHERE d.expanded_at IS NULL AND d.status <> %(finished)s
                  AND (f.created IS NULL OR d.created > f.created)
            ),
            EXISTS (
                SELECT 1 FROM {records} dd JOIN {deployments} d ON d.id = dd.deployment_id
                WHERE dd.device_id = %(device)s AND dd.deleted IS NULL AND dd.status = %(pending)s
                  AND dd.admitted_at IS NULL AND d.status <> %(finished)s
                  AND (f.created IS NULL OR dd.created > f.created)
            ) OR EXISTS (
                SELECT 1 FROM {deployments} d
                WHERE d.target_kind = %(dynamic)s AND d.status <> %(finished)s
                  AND (f.created IS NULL OR d.created > f.created)
                  AND (d.filter_id IN (
                      SELECT device_filter_id FROM {FilterMembership._meta.db_table}
                      WHERE device_id = %(device)s
                  ) OR d.filter_id IN (
                      -- membership not known yet (never evaluated since the last change):
                      -- the admission evaluates the filter for this device
                      SELECT id FROM {DeviceFilter._meta.db_table} WHERE evaluated_ts IS NULL
                  ))
                  AND NOT EXISTS (
                      SELECT 1 FROM {records} own
                      WHERE own.deployment_id = d.id AND own.device_id = %(device)s
                        AND own.deleted IS NULL
                  )
            ),
            active.*
        FROM newest_final f LEFT JOIN active ON true
    """
    connection.ensure_connection()
    # A server-side prepared statement: PostgreSQL plans this query once per connection
    # (planning cost 5x its execution), Django's own cursors re-plan every statement.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            sql,
            {
                "device": uuid.UUID(str(device_id)),
                "final": sorted(FINAL_STATUSES),
                "active": sorted(ACTIVE_STATUSES),
                "finished": DeploymentStatus.FINISHED.value,
                "pending": DeviceDeploymentStatus.PENDING.value,
                "dynamic": TargetKind.DYNAMIC.value,
            },
            prepare=True,
        )
        (
            inventory,
            newest_final,
            has_unexpanded,
            has_candidate,
            deployment_id,
            status,
            stored_request,
            artifact_id,
            force_installation,
            artifact_name,
            device_types,
            artifact_file,
            artifact_size,
        ) = _one_row(cursor.fetchone())
    active = None
    if deployment_id is not None:
        artifact = None
        if artifact_id is not None:
            # Unsaved instance from the joined columns: enough to build the instructions.
            artifact = Artifact(
                id=artifact_id,
                name=artifact_name,
                device_types_compatible=device_types,
                file=artifact_file,
                size=artifact_size,
            )
        active = ActiveRecord(
            deployment_id=deployment_id,
            status=status,
            request=_json(stored_request),
            force_installation=force_installation,
            artifact=artifact,
        )
    return PollOverview(
        inventory=_json(inventory) or {},
        newest_final=newest_final,
        active=active,
        has_unexpanded=has_unexpanded,
        has_candidate=has_candidate,
    )


def _one_row(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    assert row is not None  # the query selects from a one-row CTE
    return row


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _resumed_instructions(
    active: ActiveRecord | None, request: PollRequest
) -> Instructions | None:
    """Instructions for a repeated poll of an admitted record, when nothing needs deciding."""
    if (
        active is None
        or active.artifact is None
        or active.request != request.as_stored()
    ):
        return None
    if (
        active.status == DeviceDeploymentStatus.PENDING
        and not active.force_installation
        and request.artifact_name == active.artifact.name
    ):
        return None  # already installed: the full path records it
    return Instructions(
        deployment_id=str(active.deployment_id), artifact=active.artifact
    )


def _active_admitted_record(device_id: uuid.UUID) -> DeviceDeployment | None:
    return (
        DeviceDeployment.objects.live()
        .active()
        .select_related("deployment", "artifact")
        .filter(device_id=device_id, admitted_at__isnull=False)
        .order_by("created", "deployment_id")
        .first()
    )


def _admit_next(
    device_id: uuid.UUID, request: PollRequest, overview: PollOverview
) -> DeviceDeployment | None:
    after = overview.newest_final
    if overview.has_unexpanded:
        materialise_unexpanded_targets(device_id, after)
    elif not overview.has_candidate:
        return None
    static_target = _oldest_static_target(device_id, after)
    dynamic = _oldest_dynamic_candidate(device_id, after)
    if static_target is not None and (
        dynamic is None
        or (static_target.created, str(static_target.deployment_id))
        < (dynamic.created, str(dynamic.pk))
    ):
        return _admit_static(static_target, request)
    if dynamic is not None:
        return _admit_dynamic(dynamic, device_id, request)
    return None


def materialise_unexpanded_targets(
    device_id: uuid.UUID, after: dt.datetime | None
) -> None:
    """Give the device its row now in static deployments a worker has not expanded yet.

    Without this, a device polling during an expansion could be handed a newer deployment
    first and, by the ordering rule, lose the older one for good.
    """
    unexpanded = Deployment.objects.unexpanded().unfinished()
    if after is not None:
        unexpanded = unexpanded.filter(created__gt=after)
    for deployment in unexpanded.order_by("created", "id"):
        targets_sql, params = target_devices_sql(deployment)
        insert_pending_records(
            source_sql="SELECT %s::uuid AS deployment_id, t.device_id, %s::timestamptz AS created "
            f"FROM ({targets_sql}) t WHERE t.device_id = %s::uuid",
            params=[str(deployment.pk), deployment.created, *params, str(device_id)],
        )


def _oldest_static_target(
    device_id: uuid.UUID, after: dt.datetime | None
) -> DeviceDeployment | None:
    targets = (
        DeviceDeployment.objects.live()
        .select_related("deployment")
        .filter(
            device_id=device_id,
            status=DeviceDeploymentStatus.PENDING,
            admitted_at__isnull=True,
        )
        .exclude(deployment__status=DeploymentStatus.FINISHED)
    )
    if after is not None:
        targets = targets.filter(created__gt=after)
    return targets.order_by("created", "deployment_id").first()


def _oldest_dynamic_candidate(
    device_id: uuid.UUID, after: dt.datetime | None
) -> Deployment | None:
    member_of = FilterMembership.objects.filter(device_id=device_id).values(
        "device_filter_id"
    )
    # Filters whose stored membership is not known yet (never evaluated since their last change)
    # are candidates too, checked for this device on the spot: a matching device is admitted on
    # its first poll, not once the worker is done. In the common case there are none, and this
    # stays one query.
    unevaluated = DeviceFilter.objects.filter(evaluated_ts__isnull=True)
    candidates = (
        Deployment.objects.unfinished()
        .filter(
            Q(filter_id__in=member_of) | Q(filter_id__in=unevaluated.values("pk")),
            target_kind=TargetKind.DYNAMIC,
        )
        .exclude(
            Exists(
                DeviceDeployment.objects.live().filter(
                    deployment_id=OuterRef("pk"), device_id=device_id
                )
            )
        )
        .annotate(
            is_member=Exists(member_of.filter(device_filter_id=OuterRef("filter_id")))
        )
    )
    if after is not None:
        candidates = candidates.filter(created__gt=after)
    candidate = candidates.order_by("created", "id").first()
    if candidate is None or candidate.is_member:
        return candidate
    # The oldest candidate is on an unevaluated filter: evaluate every unevaluated filter for
    # this device at once, then take the oldest candidate it is a member of or matches.
    matching = unevaluated_filters_matching_device(
        device_id=device_id, filter_ids=list(unevaluated.values_list("pk", flat=True))
    )
    return (
        candidates.filter(Q(is_member=True) | Q(filter_id__in=matching))
        .order_by("created", "id")
        .first()
    )


def _take_phase_slot(
    deployment: Deployment, now: dt.datetime
) -> tuple[bool, DeploymentPhase | None]:
    """Admission under the cumulative phase model (spec §1.12); call inside a transaction.

    Locks the deployment's started phases so concurrent polls cannot overfill them.
    """
    if not deployment.is_phased:
        return True, None
    started = list(
        phase_qs_for_update()
        .filter(deployment_id=deployment.pk, start_ts__lte=now)
        .order_by("number")
    )
    if not started:
        return False, None  # the first phase has not started
    # Capacity is cumulative, so a device polling late fills the earliest started batch with
    # room (each batch stays within its own size); unbounded last phases always have room.
    slot = next(
        (
            phase
            for phase in started
            if phase.capacity is None or phase.device_count < phase.capacity
        ),
        None,
    )
    if slot is None:
        return False, None
    DeploymentPhase.objects.filter(pk=slot.pk).update(
        device_count=F("device_count") + 1
    )
    return True, slot


def _artifact_fields(artifact: Artifact) -> dict[str, Any]:
    """A record's fields for its assigned artifact, with a snapshot that outlives the artifact."""
    return {
        "artifact": artifact,
        "artifact_size": artifact.size,
        "image": artifact_snapshot(artifact),
    }


def _assignment_fields(deployment: Deployment, request: PollRequest) -> dict[str, Any]:
    """The artifact chosen for the device, as fields of its record (empty: none fits)."""
    artifact = select_artifact(deployment=deployment, request=request)
    return {} if artifact is None else _artifact_fields(artifact)


def _admit_static(
    target: DeviceDeployment, request: PollRequest
) -> DeviceDeployment | None:
    now = timezone.now()
    # Chosen before the transaction: the claim then writes everything in one UPDATE.
    admission = {
        "admitted_at": now,
        "attempts": 1,
        "request": request.as_stored(),
        **_assignment_fields(target.deployment, request),
    }
    with transaction.atomic():
        admitted, phase = _take_phase_slot(target.deployment, now)
        if not admitted:
            return None
        claimed = DeviceDeployment.objects.filter(
            pk=target.pk, admitted_at__isnull=True
        ).update(**admission, phase=phase)
        if not claimed:
            transaction.set_rollback(True)
    if not claimed:
        # A concurrent poll of this device won.
        return _active_admitted_record(target.device_id)
    for field, value in {**admission, "phase": phase}.items():
        setattr(target, field, value)
    return target


def _admit_dynamic(
    deployment: Deployment, device_id: uuid.UUID, request: PollRequest
) -> DeviceDeployment | None:
    now = timezone.now()
    assignment = _assignment_fields(deployment, request)
    try:
        with transaction.atomic():
            has_room = (
                Deployment.objects.unfinished()
                .filter(pk=deployment.pk)
                .filter(Q(max_devices=0) | Q(device_count__lt=F("max_devices")))
                .update(device_count=F("device_count") + 1)
            )
            if not has_room:
                return None
            admitted, phase = _take_phase_slot(deployment, now)
            if not admitted:
                transaction.set_rollback(True)
                return None
            record = DeviceDeployment.objects.create(
                deployment=deployment,
                device_id=device_id,
                status=DeviceDeploymentStatus.PENDING,
                created=deployment.created,
                admitted_at=now,
                attempts=1,
                request=request.as_stored(),
                phase=phase,
                **assignment,
            )
    except IntegrityError:
        # A concurrent poll of this device won.
        return _active_admitted_record(device_id)
    record.deployment = deployment
    return record


def select_artifact(*, deployment: Deployment, request: PollRequest) -> Artifact | None:
    """The smallest artifact of the release that fits the device type and whose depends the device provides."""
    provided = {
        **request.provides,
        "artifact_name": request.artifact_name,
        "device_type": request.device_type,
    }
    candidates = Artifact.objects.filter(
        id__in=deployment.artifacts,
        device_types_compatible__contains=[request.device_type],
    ).order_by("size", "id")
    for artifact in candidates:
        if _depends_satisfied(artifact.depends or {}, provided):
            return artifact
    return None


def _depends_satisfied(depends: dict[str, Any], provided: dict[str, str]) -> bool:
    for key, wanted in depends.items():
        if key == "device_type":
            continue
        have = provided.get(key)
        if have is None:
            return False
        if isinstance(wanted, list):
            if have not in wanted:
                return False
        elif have != wanted:
            return False
    return True


def _assign_artifact(record: DeviceDeployment, artifact: Artifact) -> None:
    fields = _artifact_fields(artifact)
    DeviceDeployment.objects.filter(pk=record.pk, artifact__isnull=True).update(
        **fields
    )
    for field, value in fields.items():
        setattr(record, field, value)
