"""Static groups: API shapes, one group per device, history, "as of" resolution."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from devices_app.models import Device, DeviceFilter, GroupMembership
from devices_app.selectors import device_group_names
from devices_app.services.groups import (
    accepted_devices_sql,
    add_devices_to_group,
    group_members_as_of_sql,
    remove_devices_from_group,
    set_device_group,
)
from tests.devices_app.memberships import device_matches_filter
from tests.devices_app.test_filtering import make_device

pytestmark = pytest.mark.django_db

DEVICES_URL = "/api/management/v1/inventory/devices"
GROUPS_URL = "/api/management/v1/inventory/groups"


def run_sql(sql: str, params: list[Any]) -> set[Any]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def stays(device: Device) -> list[tuple[str, bool]]:
    return [
        (m.group_name, m.removed_ts is None)
        for m in device.group_memberships.order_by("added_ts", "id")
    ]


def test_set_and_get_device_group(management_client: APIClient) -> None:
    device = make_device()

    put = management_client.put(
        f"{DEVICES_URL}/{device.id}/group", {"group": "g-1_a"}, format="json"
    )
    get = management_client.get(f"{DEVICES_URL}/{device.id}/group")

    assert put.status_code == 204
    assert get.status_code == 200
    assert get.json() == {"group": "g-1_a"}
    device.refresh_from_db()
    assert device.group_name == "g-1_a"
    assert stays(device) == [("g-1_a", True)]
    assert device_group_names(device_id=device.id) == ["g-1_a"]


def test_ungrouped_device_reports_null_group(management_client: APIClient) -> None:
    device = make_device()
    assert management_client.get(f"{DEVICES_URL}/{device.id}/group").json() == {
        "group": None
    }
    assert device_group_names(device_id=device.id) == []


def test_moving_a_device_closes_its_previous_stay(management_client: APIClient) -> None:
    device = make_device()
    url = f"{DEVICES_URL}/{device.id}/group"
    management_client.put(url, {"group": "g1"}, format="json")

    again = management_client.put(url, {"group": "g1"}, format="json")
    moved = management_client.put(url, {"group": "g2"}, format="json")

    assert (again.status_code, moved.status_code) == (204, 204)
    device.refresh_from_db()
    assert device.group_name == "g2"
    assert stays(device) == [("g1", False), ("g2", True)]


@pytest.mark.parametrize("status", ["pending", "rejected", "preauthorized", "noauth"])
def test_only_accepted_devices_can_be_grouped(
    management_client: APIClient, status: str
) -> None:
    device = make_device(status=status)

    response = management_client.put(
        f"{DEVICES_URL}/{device.id}/group", {"group": "g1"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()) == {"error", "request_id"}
    device.refresh_from_db()
    assert device.group_name is None
    assert GroupMembership.objects.count() == 0


@pytest.mark.parametrize(
    "name", ["", "has space", "slash/y", "dot.x", "ü", "a" * 1025, 5]
)
def test_invalid_group_names_are_400(management_client: APIClient, name: Any) -> None:
    device = make_device()

    response = management_client.put(
        f"{DEVICES_URL}/{device.id}/group", {"group": name}, format="json"
    )

    assert response.status_code == 400
    device.refresh_from_db()
    assert device.group_name is None


def test_unknown_device_group_is_404(management_client: APIClient) -> None:
    url = f"{DEVICES_URL}/5b0b1c2d-0000-4000-8000-000000000001/group"
    assert management_client.get(url).status_code == 404
    assert management_client.put(url, {"group": "g1"}, format="json").status_code == 404


def test_remove_device_from_group(management_client: APIClient) -> None:
    device = make_device()
    management_client.put(
        f"{DEVICES_URL}/{device.id}/group", {"group": "g1"}, format="json"
    )

    wrong = management_client.delete(f"{DEVICES_URL}/{device.id}/group/g2")
    right = management_client.delete(f"{DEVICES_URL}/{device.id}/group/g1")
    again = management_client.delete(f"{DEVICES_URL}/{device.id}/group/g1")

    assert (wrong.status_code, right.status_code, again.status_code) == (404, 204, 404)
    device.refresh_from_db()
    assert device.group_name is None
    assert stays(device) == [("g1", False)]


def test_list_groups_and_group_devices(management_client: APIClient) -> None:
    # given
    members = [make_device() for _ in range(3)]
    other = make_device()
    for device in members:
        set_device_group(device_id=device.id, group_name="beta")
    set_device_group(device_id=other.id, group_name="alpha")
    Device.objects.filter(pk=other.pk).update(status="rejected")

    # when
    groups = management_client.get(GROUPS_URL)
    accepted_groups = management_client.get(GROUPS_URL, {"status": "accepted"})
    first = management_client.get(f"{GROUPS_URL}/beta/devices", {"per_page": 2})
    second = management_client.get(
        f"{GROUPS_URL}/beta/devices", {"per_page": 2, "page": 2}
    )
    unknown = management_client.get(f"{GROUPS_URL}/gamma/devices")

    # then
    assert groups.json() == ["alpha", "beta"]
    assert accepted_groups.json() == ["beta"]
    assert first.json() == [str(d.id) for d in members[:2]]
    assert first["X-Total-Count"] == "3"
    assert second.json() == [str(members[2].id)]
    assert unknown.status_code == 404


def test_bulk_add_counts_matched_and_updated(management_client: APIClient) -> None:
    # given: one already in the group, one elsewhere, one ungrouped, one pending, one unknown
    in_group, elsewhere, ungrouped = make_device(), make_device(), make_device()
    pending = make_device(status="pending")
    set_device_group(device_id=in_group.id, group_name="g1")
    set_device_group(device_id=elsewhere.id, group_name="g2")
    ids = [str(d.id) for d in (in_group, elsewhere, ungrouped, pending)]
    ids.append("5b0b1c2d-0000-4000-8000-000000000002")

    # when
    response = management_client.patch(f"{GROUPS_URL}/g1/devices", ids, format="json")

    # then
    assert response.status_code == 200
    assert response.json() == {"updated_count": 2, "matched_count": 3}
    assert set(Device.objects.filter(group_name="g1").values_list("id", flat=True)) == {
        in_group.id,
        elsewhere.id,
        ungrouped.id,
    }
    elsewhere.refresh_from_db()
    assert stays(elsewhere) == [("g2", False), ("g1", True)]
    pending.refresh_from_db()
    assert pending.group_name is None


@pytest.mark.parametrize("body", [["not-a-uuid"], {"id": "x"}, "x", [1]])
def test_bulk_add_rejects_bad_bodies(management_client: APIClient, body: Any) -> None:
    device = make_device()

    response = management_client.patch(f"{GROUPS_URL}/g1/devices", body, format="json")

    assert response.status_code == 400
    device.refresh_from_db()
    assert device.group_name is None


def test_bulk_remove(management_client: APIClient) -> None:
    a, b, c = make_device(), make_device(), make_device()
    add_devices_to_group(group_name="g1", device_ids=[a.id, b.id])
    set_device_group(device_id=c.id, group_name="g2")

    response = management_client.delete(
        f"{GROUPS_URL}/g1/devices", [str(a.id), str(c.id)], format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"updated_count": 1, "matched_count": 1}
    assert list(
        Device.objects.filter(group_name="g1").values_list("id", flat=True)
    ) == [b.id]
    c.refresh_from_db()
    assert c.group_name == "g2"


def test_delete_group_ungroups_every_member(management_client: APIClient) -> None:
    members = [make_device() for _ in range(3)]
    add_devices_to_group(group_name="g1", device_ids=[d.id for d in members])

    response = management_client.delete(f"{GROUPS_URL}/g1")
    again = management_client.delete(f"{GROUPS_URL}/g1")

    assert response.status_code == 200
    assert response.json() == {"updated_count": 3}
    assert again.status_code == 404
    assert not Device.objects.filter(group_name__isnull=False).exists()
    assert GroupMembership.objects.filter(removed_ts__isnull=True).count() == 0
    assert GroupMembership.objects.count() == 3


def test_group_as_of_a_past_instant_resolves_from_history() -> None:
    # given: a group of 3, then T, then one device added and one removed
    original = [make_device() for _ in range(3)]
    add_devices_to_group(group_name="g1", device_ids=[d.id for d in original])
    as_of = timezone.now()
    added = make_device()
    add_devices_to_group(group_name="g1", device_ids=[added.id])
    remove_devices_from_group(group_name="g1", device_ids=[original[0].id])

    # when: resolved in SQL, as a deployment's INSERT … SELECT would
    sql, params = group_members_as_of_sql(group_name="g1", as_of=as_of)
    then_members = run_sql(sql, params)
    sql_now, params_now = group_members_as_of_sql(group_name="g1", as_of=timezone.now())

    # then: the original 3 as of T; the current set now
    assert then_members == {d.id for d in original}
    assert run_sql(sql_now, params_now) == {original[1].id, original[2].id, added.id}


def test_group_as_of_ignores_devices_no_longer_accepted_and_other_groups() -> None:
    a, b, c = make_device(), make_device(), make_device()
    add_devices_to_group(group_name="g1", device_ids=[a.id, b.id])
    add_devices_to_group(group_name="g2", device_ids=[c.id])
    as_of = timezone.now()
    Device.objects.filter(pk=b.pk).update(status="rejected")

    sql, params = group_members_as_of_sql(group_name="g1", as_of=as_of)

    assert run_sql(sql, params) == {a.id}
    before_anything = group_members_as_of_sql(
        group_name="g1", as_of=as_of - dt.timedelta(days=1)
    )
    assert run_sql(*before_anything) == set()


def test_group_as_of_sql_works_inside_insert_select() -> None:
    members = [make_device() for _ in range(2)]
    add_devices_to_group(group_name="g1", device_ids=[d.id for d in members])
    sql, params = group_members_as_of_sql(group_name="g1", as_of=timezone.now())

    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE picked (device_id uuid PRIMARY KEY)")
        cursor.execute(
            f"INSERT INTO picked (device_id) SELECT t.device_id FROM ({sql}) t", params
        )
        cursor.execute("SELECT count(*) FROM picked")
        assert cursor.fetchone()[0] == 2


def test_accepted_devices_sql() -> None:
    accepted = make_device()
    make_device(status="pending")
    make_device(status="decommissioned")

    assert run_sql(*accepted_devices_sql()) == {accepted.id}


def test_database_allows_one_open_stay_per_device() -> None:
    device = make_device()
    set_device_group(device_id=device.id, group_name="g1")

    with pytest.raises(IntegrityError), transaction.atomic():
        GroupMembership.objects.create(
            device=device, group_name="g2", added_ts=timezone.now()
        )


@pytest.mark.parametrize("name", ["", "bad name"])
def test_database_rejects_invalid_group_names(name: str) -> None:
    device = make_device()

    with pytest.raises(IntegrityError), transaction.atomic():
        Device.objects.filter(pk=device.pk).update(group_name=name)


def test_group_changes_recheck_filter_memberships_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given: a saved filter over the system.group attribute
    a, b = make_device(), make_device()
    saved = DeviceFilter.objects.create(
        name="in g1",
        terms=[{"scope": "system", "attribute": "group", "type": "$eq", "value": "g1"}],
    )

    # when: a bulk change commits (eager Celery in unit tests)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        add_devices_to_group(group_name="g1", device_ids=[a.id, b.id])

    # then
    assert len(callbacks) == 1
    assert device_matches_filter(device_id=a.id, filter_id=saved.id)
    assert device_matches_filter(device_id=b.id, filter_id=saved.id)

    with django_capture_on_commit_callbacks(execute=True):
        remove_devices_from_group(group_name="g1", device_ids=[a.id])
    assert not device_matches_filter(device_id=a.id, filter_id=saved.id)
    assert device_matches_filter(device_id=b.id, filter_id=saved.id)


@pytest.mark.django_db(transaction=True)
def test_concurrent_moves_of_one_device_leave_one_open_stay() -> None:
    # given
    device = make_device()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def move(group_name: str) -> None:
        try:
            barrier.wait(timeout=5)
            set_device_group(device_id=device.id, group_name=group_name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    # when: two operators move the same device at the same moment
    threads = [threading.Thread(target=move, args=(name,)) for name in ("g1", "g2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # then: both succeed in turn; one open stay, naming the device's group
    assert errors == []
    device.refresh_from_db()
    open_stays = GroupMembership.objects.filter(device=device, removed_ts__isnull=True)
    assert [stay.group_name for stay in open_stays] == [device.group_name]
    assert GroupMembership.objects.filter(device=device).count() == 2
