"""Direct tests of the hand-written SQL in deployments_app.sql."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from deployments_app.models import Deployment, DeviceDeployment, TargetKind
from deployments_app.sql import PendingInsert, insert_pending_records
from deployments_app.states import DeviceDeploymentStatus
from devices_app.models import Device
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
