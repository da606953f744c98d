"""Saved filters (dynamic groups): API, and the worker-maintained membership (eager Celery here)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from devices_app import tasks
from devices_app.exceptions import DeviceFilterNotFound
from devices_app.models import Device, DeviceFilter, FilterMembership, GroupMembership
from devices_app.selectors import filter_member_count, get_device_filter
from devices_app.services.filters import (
    create_device_filter,
    delete_device_filter,
    update_device_filter,
)
from devices_app.services.groups import set_device_group
from devices_app.services.inventory import merge_device_inventory, replace_device_tags
from devices_app.services.memberships import (
    REPAIR_LOCK,
    evaluate_device_filter,
    lock_memberships,
    recheck_device_memberships,
    sync_device_memberships,
)
from tests.devices_app.memberships import device_matches_filter
from tests.devices_app.test_filtering import make_device

pytestmark = pytest.mark.django_db

FILTERS_URL = "/api/management/v2/inventory/filters"
RPI = [
    {"scope": "inventory", "attribute": "device_type", "type": "$eq", "value": "rpi"}
]


def members(device_filter: Any) -> set[Any]:
    return set(
        FilterMembership.objects.filter(device_filter_id=device_filter.pk).values_list(
            "device_id", flat=True
        )
    )


@pytest.fixture
def fleet() -> dict[str, Device]:
    return {
        "rpi_1": make_device(inventory={"device_type": "rpi"}),
        "rpi_2": make_device(inventory={"device_type": "rpi"}),
        "rpi_pending": make_device(status="pending", inventory={"device_type": "rpi"}),
        "rpi_gone": make_device(
            status="decommissioned", inventory={"device_type": "rpi"}
        ),
        "x86": make_device(inventory={"device_type": "x86"}),
    }


# --- API -----------------------------------------------------------------------------------------


def test_create_filter_evaluates_membership_after_commit(
    management_client: APIClient,
    fleet: dict[str, Device],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = management_client.post(
            FILTERS_URL, {"name": "raspberries", "terms": RPI}, format="json"
        )

    # then: 201, the filter, and its membership (accepted devices only)
    assert response.status_code == 201
    body = response.json()
    saved = DeviceFilter.objects.get()
    assert body == {"id": str(saved.id), "name": "raspberries", "terms": RPI}
    assert response["Location"] == f"./management/v2/inventory/filters/{saved.id}"
    assert len(callbacks) == 1
    assert members(saved) == {fleet["rpi_1"].id, fleet["rpi_2"].id}
    saved.refresh_from_db()
    assert saved.evaluated_ts is not None


def test_get_filter_shows_member_count(
    management_client: APIClient, fleet: dict[str, Device]
) -> None:
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)
    saved.refresh_from_db()
    assert saved.evaluated_ts is not None

    detail = management_client.get(f"{FILTERS_URL}/{saved.id}")
    listing = management_client.get(FILTERS_URL)

    assert detail.status_code == 200
    assert detail.json() == {
        "id": str(saved.id),
        "name": "raspberries",
        "terms": RPI,
        "member_count": 2,
        "evaluated_ts": saved.evaluated_ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    assert listing.json() == [
        {"id": str(saved.id), "name": "raspberries", "terms": RPI}
    ]
    assert listing["X-Total-Count"] == "1"


def test_delete_filter_drops_membership(
    management_client: APIClient, fleet: dict[str, Device]
) -> None:
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)

    response = management_client.delete(f"{FILTERS_URL}/{saved.id}")
    again = management_client.delete(f"{FILTERS_URL}/{saved.id}")

    assert response.status_code == 204
    assert again.status_code == 404
    assert DeviceFilter.objects.count() == 0
    assert FilterMembership.objects.count() == 0


def test_unknown_filter_is_404(management_client: APIClient) -> None:
    response = management_client.get(
        f"{FILTERS_URL}/0d6c8f0e-0000-4000-8000-000000000000"
    )
    assert response.status_code == 404
    assert set(response.json()) == {"error", "request_id"}


def test_duplicate_filter_name_is_409(management_client: APIClient) -> None:
    create_device_filter(name="raspberries", terms=RPI)

    response = management_client.post(
        FILTERS_URL, {"name": "raspberries", "terms": RPI}, format="json"
    )

    assert response.status_code == 409
    assert DeviceFilter.objects.count() == 1


def _term(**overrides: Any) -> dict[str, Any]:
    return {**RPI[0], **overrides}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "f", "terms": [_term(type="$between")]},
        {"name": "f", "terms": [_term(scope="monitor")]},
        {"name": "f", "terms": [_term(value="x" * 5000)]},
        {"name": "f", "terms": [_term(type="$in", value=["x"] * 1001)]},
        {"name": "f", "terms": [_term(type="$regex", value="[")]},
        {"name": "f", "terms": [_term(type="$regex", value="(?P<x>a)")]},
        {"name": "f", "terms": [{"scope": "inventory"}]},
        {"name": "f", "terms": []},
        {"name": "f", "terms": "device_type=rpi"},
        {"name": "f"},
        {"name": "", "terms": RPI},
        {"name": "   ", "terms": RPI},
        {"name": 7, "terms": RPI},
        {"name": "x" * 1025, "terms": RPI},
    ],
)
def test_bad_filters_are_400_and_nothing_is_stored(
    management_client: APIClient,
    body: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = management_client.post(FILTERS_URL, body, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"error", "request_id"}
    assert DeviceFilter.objects.count() == 0
    assert callbacks == []


# --- selectors the deployments engine uses -------------------------------------------------------


def test_selectors_for_deployments(
    fleet: dict[str, Device], django_assert_num_queries: Any
) -> None:
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)

    loaded = get_device_filter(filter_id=saved.id)
    assert (loaded.id, loaded.name, loaded.terms) == (saved.id, "raspberries", RPI)
    assert filter_member_count(filter_id=saved.id) == 2
    with django_assert_num_queries(1):
        assert (
            device_matches_filter(device_id=fleet["rpi_1"].id, filter_id=saved.id)
            is True
        )
    assert device_matches_filter(device_id=fleet["x86"].id, filter_id=saved.id) is False
    assert (
        device_matches_filter(device_id=fleet["rpi_pending"].id, filter_id=saved.id)
        is False
    )
    with pytest.raises(DeviceFilterNotFound):
        get_device_filter(filter_id="0d6c8f0e-0000-4000-8000-000000000000")
    with pytest.raises(DeviceFilterNotFound):
        get_device_filter(filter_id="not-a-uuid")


# --- materialisation -----------------------------------------------------------------------------


def test_evaluation_in_batches_is_exact_and_idempotent(
    fleet: dict[str, Device],
) -> None:
    # given: more rpi devices than one batch
    extra = [make_device(inventory={"device_type": "rpi"}) for _ in range(5)]
    saved = create_device_filter(name="raspberries", terms=RPI)
    expected = {fleet["rpi_1"].id, fleet["rpi_2"].id, *(d.id for d in extra)}

    # when
    first = evaluate_device_filter(filter_id=saved.id, batch_size=2)
    second = evaluate_device_filter(filter_id=saved.id, batch_size=3)

    # then
    assert (first.inserted, first.deleted) == (7, 0)
    assert (second.inserted, second.deleted) == (0, 0)
    assert members(saved) == expected


def test_evaluation_repairs_drift(fleet: dict[str, Device]) -> None:
    # given: a stored membership with one wrong row and one missing row
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)
    FilterMembership.objects.filter(device_id=fleet["rpi_1"].id).delete()
    FilterMembership.objects.create(
        device_filter=saved, device=fleet["x86"], since_ts=timezone.now()
    )

    # when
    change = evaluate_device_filter(filter_id=saved.id, batch_size=2)

    # then
    assert (change.inserted, change.deleted) == (1, 1)
    assert members(saved) == {fleet["rpi_1"].id, fleet["rpi_2"].id}


def test_evaluating_a_deleted_filter_is_a_no_op(fleet: dict[str, Device]) -> None:
    saved = create_device_filter(name="raspberries", terms=RPI)
    delete_device_filter(filter_id=saved.id)

    change = evaluate_device_filter(filter_id=saved.id)

    assert (change.inserted, change.deleted) == (0, 0)
    assert FilterMembership.objects.count() == 0


def test_changing_terms_reevaluates(
    fleet: dict[str, Device], django_capture_on_commit_callbacks: Any
) -> None:
    saved = create_device_filter(name="f", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)

    with django_capture_on_commit_callbacks(execute=True):
        update_device_filter(filter_id=saved.id, terms=[_term(value="x86")])

    assert members(saved) == {fleet["x86"].id}


def test_inventory_merge_rechecks_synchronously(fleet: dict[str, Device]) -> None:
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)
    device = fleet["x86"]

    changed = merge_device_inventory(
        device_id=device.id, attributes={"device_type": "rpi"}
    )
    unchanged = merge_device_inventory(
        device_id=device.id, attributes={"device_type": "rpi"}
    )

    assert (changed, unchanged) == (True, False)
    assert device_matches_filter(device_id=device.id, filter_id=saved.id)


def test_tag_change_rechecks_in_a_task_after_commit(
    fleet: dict[str, Device], django_capture_on_commit_callbacks: Any
) -> None:
    saved = create_device_filter(
        name="prod",
        terms=[{"scope": "tags", "attribute": "env", "type": "$eq", "value": "prod"}],
    )
    device = fleet["x86"]

    with django_capture_on_commit_callbacks(execute=False) as pending:
        replace_device_tags(device_id=device.id, tags={"env": "prod"})
    assert not device_matches_filter(device_id=device.id, filter_id=saved.id)

    for callback in pending:
        callback()
    assert device_matches_filter(device_id=device.id, filter_id=saved.id)


def test_auth_status_change_recheck(
    fleet: dict[str, Device], django_capture_on_commit_callbacks: Any
) -> None:
    # given: what devauth does after a status change (one line: recheck_device_memberships)
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)
    accepted_now, rejected_now = fleet["rpi_pending"], fleet["rpi_1"]

    with django_capture_on_commit_callbacks(execute=True):
        Device.objects.filter(pk=accepted_now.pk).update(status="accepted")
        Device.objects.filter(pk=rejected_now.pk).update(status="rejected")
        recheck_device_memberships(device_ids=[accepted_now.id, rejected_now.id])

    assert members(saved) == {fleet["rpi_2"].id, accepted_now.id}


def test_recheck_dispatches_chunks_of_1000(
    django_capture_on_commit_callbacks: Any,
) -> None:
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(2500)]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        recheck_device_memberships(device_ids=ids)

    assert len(callbacks) == 3


def test_sync_device_memberships_covers_every_filter(fleet: dict[str, Device]) -> None:
    rpi = create_device_filter(name="rpi", terms=RPI)
    x86 = create_device_filter(name="x86", terms=[_term(value="x86")])
    device = fleet["x86"]
    Device.objects.filter(pk=device.pk).update(inventory={"device_type": "rpi"})

    change = sync_device_memberships(device_ids=[device.id, fleet["rpi_1"].id])

    assert (change.inserted, change.deleted) == (2, 0)
    assert members(rpi) == {device.id, fleet["rpi_1"].id}
    assert members(x86) == set()


def test_periodic_repair_evaluates_every_filter_in_bounded_chained_runs(
    fleet: dict[str, Device],
) -> None:
    first = create_device_filter(name="rpi", terms=RPI)
    second = create_device_filter(name="x86", terms=[_term(value="x86")])

    evaluated = tasks.reevaluate_device_filters_task(limit=1)

    assert evaluated == 1
    assert members(first) == {fleet["rpi_1"].id, fleet["rpi_2"].id}
    assert members(second) == {fleet["x86"].id}  # by the chained run
    assert DeviceFilter.objects.filter(evaluated_ts__isnull=True).count() == 0
    assert cache.get(REPAIR_LOCK) is None


def test_periodic_repair_never_overlaps(fleet: dict[str, Device]) -> None:
    saved = create_device_filter(name="rpi", terms=RPI)
    cache.add(REPAIR_LOCK, "another run", 60)
    try:
        evaluated = tasks.reevaluate_device_filters_task(limit=10)
    finally:
        cache.delete(REPAIR_LOCK)

    assert evaluated == 0
    assert members(saved) == set()


@pytest.mark.django_db(transaction=True)
def test_inventory_write_waits_for_a_running_evaluation() -> None:
    # given: an evaluation holds the exclusive membership lock (mid-batch)
    device = make_device(inventory={"device_type": "x86"})
    saved = create_device_filter(name="raspberries", terms=RPI)
    locked, release, written = threading.Event(), threading.Event(), threading.Event()

    def evaluation_in_progress() -> None:
        try:
            with transaction.atomic():
                lock_memberships(exclusive=True)
                locked.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    def device_reports_inventory() -> None:
        try:
            merge_device_inventory(
                device_id=device.id, attributes={"device_type": "rpi"}
            )
            written.set()
        finally:
            connections.close_all()

    evaluator = threading.Thread(target=evaluation_in_progress)
    evaluator.start()
    assert locked.wait(timeout=5)

    # when: the device reports a changed inventory meanwhile
    reporter = threading.Thread(target=device_reports_inventory)
    reporter.start()

    # then: it waits for the batch (no interleaving with a snapshot the batch already took) ...
    assert not written.wait(timeout=0.5)
    release.set()
    evaluator.join(timeout=10)
    reporter.join(timeout=10)
    # ... and then writes, its membership included
    assert written.is_set()
    assert device_matches_filter(device_id=device.id, filter_id=saved.id)


def test_deleting_a_device_deletes_its_memberships_and_group_history(
    fleet: dict[str, Device],
) -> None:
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)
    device = fleet["rpi_1"]
    set_device_group(device_id=device.id, group_name="g1")

    device.delete()

    assert members(saved) == {fleet["rpi_2"].id}
    assert not GroupMembership.objects.filter(device_id=device.id).exists()
