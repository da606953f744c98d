"""Direct tests of hand-written SQL: deployments_app.sql and the statements services build."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from deployments_app.models import Deployment, DeviceDeployment, TargetKind
from deployments_app.services.creation import target_devices_sql
from deployments_app.services.transitions import finish_device_records
from deployments_app.sql import PendingInsert, insert_pending_records
from deployments_app.states import DeploymentStatus, DeviceDeploymentStatus
from devices_app.models import Device
from devices_app.states import DeviceStatus
from tests.factories import bulk_accepted_devices

pytestmark = pytest.mark.django_db

SOURCE = (
    "SELECT %s::uuid AS deployment_id, d.id AS device_id, %s::timestamptz AS created "
    f"FROM {Device._meta.db_table} d WHERE d.id = ANY(%s::uuid[])"
)


def _deployment(created: dt.datetime) -> Deployment:
    return Deployment.objects.create(
        name="sql",
        artifact_name="sql-release",
        created=created,
        target_kind=TargetKind.DEVICES,
        constructor_checksum=uuid.uuid4().hex,
    )


def _devices(count: int) -> list[Device]:
    return [device for device, _ in bulk_accepted_devices(count, prefix="sql")]


def test_insert_pending_records_creates_one_pending_record_per_source_row() -> None:
    # given
    created = timezone.now() - dt.timedelta(hours=1)
    deployment = _deployment(created)
    devices = _devices(3)
    ids = [device.id for device in devices]

    # when
    result = insert_pending_records(
        source_sql=SOURCE, params=[str(deployment.pk), created, ids]
    )

    # then
    assert result == PendingInsert(selected=3, inserted=3, last_device_id=max(ids))
    records = DeviceDeployment.objects.filter(deployment=deployment)
    assert sorted(records.values_list("device_id", flat=True)) == sorted(ids)
    for record in records:
        assert record.status == DeviceDeploymentStatus.PENDING
        assert record.substate == ""
        assert record.created == created
        assert record.attempts == 0
        assert record.has_log is False
        assert record.admitted_at is None
        assert record.deleted is None


def test_insert_pending_records_skips_devices_with_a_live_record_only() -> None:
    # given: device 0 has a live record, device 1 only a reset (deleted) one
    created = timezone.now()
    deployment = _deployment(created)
    devices = _devices(3)
    ids = [device.id for device in devices]
    live = DeviceDeployment.objects.create(
        deployment=deployment,
        device=devices[0],
        status=DeviceDeploymentStatus.SUCCESS,
        created=created,
    )
    DeviceDeployment.objects.create(
        deployment=deployment,
        device=devices[1],
        status=DeviceDeploymentStatus.FAILURE,
        created=created,
        deleted=created,
    )

    # when
    result = insert_pending_records(
        source_sql=SOURCE, params=[str(deployment.pk), created, ids]
    )

    # then
    assert result == PendingInsert(selected=3, inserted=2, last_device_id=max(ids))
    live.refresh_from_db()
    assert live.status == DeviceDeploymentStatus.SUCCESS
    assert DeviceDeployment.objects.filter(deployment=deployment).count() == 4
    pending = DeviceDeployment.objects.live().filter(
        deployment=deployment, status=DeviceDeploymentStatus.PENDING
    )
    assert sorted(pending.values_list("device_id", flat=True)) == sorted(ids[1:])


def test_insert_pending_records_with_an_empty_source_changes_nothing() -> None:
    deployment = _deployment(timezone.now())

    result = insert_pending_records(
        source_sql=SOURCE, params=[str(deployment.pk), timezone.now(), []]
    )

    assert result == PendingInsert(selected=0, inserted=0, last_device_id=None)
    assert not DeviceDeployment.objects.exists()


def test_insert_pending_records_evaluates_a_limited_source_once() -> None:
    # given: the expansion's shape, a keyset batch with LIMIT
    created = timezone.now()
    deployment = _deployment(created)
    ids = sorted(device.id for device in _devices(5))

    # when
    result = insert_pending_records(
        source_sql=SOURCE + " ORDER BY d.id LIMIT %s",
        params=[str(deployment.pk), created, ids, 2],
    )

    # then: the counts and the cursor describe the same two rows that were inserted
    assert result == PendingInsert(selected=2, inserted=2, last_device_id=ids[1])
    assert (
        sorted(
            DeviceDeployment.objects.filter(deployment=deployment).values_list(
                "device_id", flat=True
            )
        )
        == ids[:2]
    )


def _record(
    deployment: Deployment, device: Device, status: str, **fields: object
) -> DeviceDeployment:
    return DeviceDeployment.objects.create(
        deployment=deployment,
        device=device,
        status=status,
        created=deployment.created,
        **fields,
    )


def test_finish_device_records_finishes_only_live_active_records_of_unfinished_deployments() -> (
    None
):
    # given
    device, other = _devices(2)
    open_deployment = _deployment(timezone.now())
    finished_deployment = _deployment(timezone.now())
    finished_deployment.status = DeploymentStatus.FINISHED
    finished_deployment.save(update_fields=["status"])
    third = _deployment(timezone.now())
    active = _record(open_deployment, device, DeviceDeploymentStatus.DOWNLOADING)
    already_final = _record(third, device, DeviceDeploymentStatus.SUCCESS)
    in_finished = _record(finished_deployment, device, DeviceDeploymentStatus.PENDING)
    others = _record(open_deployment, other, DeviceDeploymentStatus.PENDING)

    # when
    touched = finish_device_records(
        device_id=device.id, to=DeviceDeploymentStatus.ABORTED
    )

    # then
    assert touched == {open_deployment.id}
    statuses = {
        record.pk: (record.status, record.finished is not None)
        for record in DeviceDeployment.objects.all()
    }
    assert statuses == {
        active.pk: (DeviceDeploymentStatus.ABORTED, True),
        already_final.pk: (DeviceDeploymentStatus.SUCCESS, False),
        in_finished.pk: (DeviceDeploymentStatus.PENDING, False),
        others.pk: (DeviceDeploymentStatus.PENDING, False),
    }


def test_target_devices_sql_of_a_device_list_selects_its_accepted_devices_after_the_cursor() -> (
    None
):
    # given: three accepted devices and one that is not accepted
    devices = sorted(_devices(4), key=lambda device: device.id)
    Device.objects.filter(pk=devices[3].pk).update(status=DeviceStatus.REJECTED)
    deployment = _deployment(timezone.now())
    deployment.device_list = [device.id for device in devices]

    # when
    everything = _device_ids(*target_devices_sql(deployment))
    after_first = _device_ids(*target_devices_sql(deployment, after=devices[0].id))

    # then
    assert everything == {device.id for device in devices[:3]}
    assert after_first == {device.id for device in devices[1:3]}


def _device_ids(sql: str, params: list[Any]) -> set[uuid.UUID]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}
