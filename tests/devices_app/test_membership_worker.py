"""Saved-filter membership maintained by a real Celery worker process over the real Redis broker."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from devices_app import tasks
from devices_app.models import DeviceFilter, FilterMembership
from devices_app.services.filters import create_device_filter
from devices_app.services.groups import add_devices_to_group
from devices_app.services.inventory import merge_device_tags
from tests.devices_app.test_filtering import make_device
from tests.fixtures.celery_worker import CeleryWorker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 30.0


def member_ids(device_filter: DeviceFilter) -> set[str]:
    return {
        str(pk)
        for pk in FilterMembership.objects.filter(
            device_filter_id=device_filter.pk
        ).values_list("device_id", flat=True)
    }


def succeeded(worker: CeleryWorker, task_name: str) -> int:
    return len(
        re.findall(
            rf"Task {re.escape(task_name)}\[[^\]]+\] succeeded", worker.log_text()
        )
    )


def test_worker_evaluates_new_filter_and_follows_tag_and_group_changes(
    celery_worker: CeleryWorker,
) -> None:
    # given: committed devices
    prod = [
        make_device(inventory={"device_type": "rpi"}, tags={"env": "prod"})
        for _ in range(3)
    ]
    dev = make_device(inventory={"device_type": "rpi"}, tags={"env": "dev"})
    pending = make_device(status="pending", tags={"env": "prod"})

    # when: a filter is created (its evaluation task is sent after commit)
    saved = create_device_filter(
        name="prod",
        terms=[{"scope": "tags", "attribute": "env", "type": "$eq", "value": "prod"}],
    )

    # then: the worker materialises the membership (accepted devices only)
    expected = {str(d.id) for d in prod}
    celery_worker.wait_for(
        lambda: member_ids(saved) == expected,
        TIMEOUT,
        description="the initial membership",
    )
    assert (
        succeeded(celery_worker, "devices_app.tasks.evaluate_device_filter_task") >= 1
    )
    assert str(pending.id) not in member_ids(saved)

    # when: an operator re-tags a device (re-check task after commit)
    merge_device_tags(device_id=dev.id, tags={"env": "prod"})

    # then
    celery_worker.wait_for(
        lambda: str(dev.id) in member_ids(saved),
        TIMEOUT,
        description="the re-tagged device to join",
    )
    assert (
        succeeded(celery_worker, "devices_app.tasks.recheck_device_memberships_task")
        >= 1
    )

    # when: a bulk group change on a filter over system.group
    in_group = create_device_filter(
        name="g1",
        terms=[{"scope": "system", "attribute": "group", "type": "$eq", "value": "g1"}],
    )
    add_devices_to_group(group_name="g1", device_ids=[prod[0].id, dev.id])

    # then
    celery_worker.wait_for(
        lambda: member_ids(in_group) == {str(prod[0].id), str(dev.id)},
        TIMEOUT,
        description="group members to join the group filter",
    )


def test_worker_periodic_repair_fixes_drift(celery_worker: CeleryWorker) -> None:
    # given: a filter whose stored membership drifted (a row lost, a stale row left behind)
    matching = [make_device(inventory={"device_type": "rpi"}) for _ in range(2)]
    other = make_device(inventory={"device_type": "x86"})
    saved = DeviceFilter.objects.create(
        name="rpi",
        terms=[
            {
                "scope": "inventory",
                "attribute": "device_type",
                "type": "$eq",
                "value": "rpi",
            }
        ],
    )
    FilterMembership.objects.create(
        device_filter=saved, device=other, since_ts=timezone.now()
    )

    # when: the beat task is sent to the worker
    tasks.reevaluate_device_filters_task.delay(20)

    # then
    # (evaluated_ts is written after the last batch commits, so wait for both)
    celery_worker.wait_for(
        lambda: (
            member_ids(saved) == {str(d.id) for d in matching}
            and DeviceFilter.objects.filter(
                pk=saved.pk, evaluated_ts__isnull=False
            ).exists()
        ),
        TIMEOUT,
        description="the repaired membership, marked evaluated",
    )


def test_device_inventory_change_moves_membership_with_the_worker_running(
    celery_worker: CeleryWorker,
) -> None:
    from rest_framework.test import APIClient

    from tests import factories
    from tests.deployments_app.engine_helpers import send_inventory

    # given: two devices and a filter evaluated by the worker
    client = APIClient()
    (blue, blue_token), (red, red_token) = factories.bulk_accepted_devices(
        2, prefix="inv"
    )
    send_inventory(client, blue_token, color="blue")
    send_inventory(client, red_token, color="red")
    before = succeeded(celery_worker, "devices_app.tasks.evaluate_device_filter_task")
    device_filter = create_device_filter(
        name="blue",
        terms=[
            {"scope": "inventory", "attribute": "color", "type": "$eq", "value": "blue"}
        ],
    )
    celery_worker.wait_for(
        lambda: (
            succeeded(celery_worker, "devices_app.tasks.evaluate_device_filter_task")
            > before
        ),
        timeout=TIMEOUT,
        description="the worker to evaluate the new filter",
    )
    assert member_ids(device_filter) == {str(blue.id)}

    # when the devices report new inventories, then their memberships follow at once
    send_inventory(client, red_token, color="blue")
    send_inventory(client, blue_token, color="green")
    assert member_ids(device_filter) == {str(red.id)}
