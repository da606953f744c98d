"""Admin: devices with attributes and groups, group history, saved filters with live membership."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from devices_app.models import Device, DeviceFilter, FilterMembership, GroupMembership
from devices_app.services.filters import create_device_filter
from devices_app.services.groups import set_device_group
from devices_app.services.memberships import evaluate_device_filter
from tests.devices_app.test_filtering import make_device

pytestmark = pytest.mark.django_db

RPI = [
    {"scope": "inventory", "attribute": "device_type", "type": "$eq", "value": "rpi"}
]


def test_device_changelist_filters_by_status_group_and_device_type(
    admin_client: Any,
) -> None:
    rpi = make_device(inventory={"device_type": "rpi"})
    x86 = make_device(inventory={"device_type": "x86"})
    set_device_group(device_id=rpi.id, group_name="lab")
    url = reverse("admin:devices_app_device_changelist")

    everything = admin_client.get(url)
    by_type = admin_client.get(url, {"device_type": "x86"})
    by_group = admin_client.get(url, {"group": "lab", "status__exact": "accepted"})
    ungrouped = admin_client.get(url, {"group": "-"})

    def ours(response: Any) -> list[Device]:
        # Only this test's devices (a concurrent transactional test may have committed others).
        return [d for d in response.context["cl"].result_list if d in (rpi, x86)]

    assert everything.status_code == 200
    assert ours(by_type) == [x86]
    assert ours(by_group) == [rpi]
    assert ours(ungrouped) == [x86]


def test_device_change_page_shows_attributes_group_history_and_filters(
    admin_client: Any,
) -> None:
    device = make_device(inventory={"device_type": "rpi"}, tags={"site": "lab"})
    set_device_group(device_id=device.id, group_name="lab")
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)

    response = admin_client.get(
        reverse("admin:devices_app_device_change", args=[device.pk])
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "&quot;device_type&quot;: &quot;rpi&quot;" in page
    assert "&quot;site&quot;: &quot;lab&quot;" in page
    assert "raspberries" in page
    assert "static group history" in page.lower()


def test_add_to_group_action(admin_client: Any) -> None:
    accepted = [make_device(), make_device()]
    pending = make_device(status="pending")

    response = admin_client.post(
        reverse("admin:devices_app_device_changelist"),
        {
            "action": "add_to_group",
            "group_name": "field",
            "_selected_action": [str(d.pk) for d in [*accepted, pending]],
        },
        follow=True,
    )

    assert response.status_code == 200
    assert set(Device.objects.filter(group_name="field")) == set(accepted)
    assert (
        GroupMembership.objects.filter(
            group_name="field", removed_ts__isnull=True
        ).count()
        == 2
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["2 device(s) moved to group 'field' (1 not accepted, skipped)."]


def test_add_to_group_action_rejects_bad_names(admin_client: Any) -> None:
    device = make_device()

    response = admin_client.post(
        reverse("admin:devices_app_device_changelist"),
        {
            "action": "add_to_group",
            "group_name": "no spaces",
            "_selected_action": [str(device.pk)],
        },
        follow=True,
    )

    assert response.status_code == 200
    device.refresh_from_db()
    assert device.group_name is None


def test_existing_accept_action_still_works(admin_client: Any) -> None:
    device = make_device(status="pending")
    device.auth_sets.create(
        identity_data=device.identity_data, pubkey="k", status="pending"
    )

    admin_client.post(
        reverse("admin:devices_app_device_changelist"),
        {"action": "accept_devices", "_selected_action": [str(device.pk)]},
    )

    device.refresh_from_db()
    assert device.status == "accepted"


def test_group_history_admin_lists_stays(admin_client: Any) -> None:
    device = make_device()
    set_device_group(device_id=device.id, group_name="a")
    set_device_group(device_id=device.id, group_name="b")

    response = admin_client.get(reverse("admin:devices_app_groupmembership_changelist"))

    assert response.status_code == 200
    assert response.context["cl"].result_count == 2


def test_saved_filter_admin_shows_live_count_and_members(admin_client: Any) -> None:
    members = [make_device(inventory={"device_type": "rpi"}) for _ in range(2)]
    make_device(inventory={"device_type": "x86"})
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)

    changelist = admin_client.get(reverse("admin:devices_app_devicefilter_changelist"))
    change = admin_client.get(
        reverse("admin:devices_app_devicefilter_change", args=[saved.pk])
    )

    assert changelist.status_code == 200
    assert [f.members_total for f in changelist.context["cl"].result_list] == [2]
    assert change.status_code == 200
    page = change.content.decode()
    for device in members:
        assert str(device.pk) in page


def test_saved_filter_admin_creates_through_the_service(
    admin_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    device = make_device(inventory={"device_type": "rpi"})

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:devices_app_devicefilter_add"),
            {
                "name": "raspberries",
                "terms": '[{"scope": "inventory", "attribute": "device_type", "type": "$eq", "value": "rpi"}]',
            },
        )

    assert response.status_code == 302
    saved = DeviceFilter.objects.get()
    assert saved.terms == RPI
    assert list(FilterMembership.objects.values_list("device_id", flat=True)) == [
        device.pk
    ]


def test_saved_filter_admin_rejects_bad_terms(admin_client: Any) -> None:
    response = admin_client.post(
        reverse("admin:devices_app_devicefilter_add"),
        {
            "name": "bad",
            "terms": '[{"scope": "inventory", "attribute": "a", "type": "$near", "value": 1}]',
        },
    )

    assert response.status_code == 200
    assert "unknown operator" in response.content.decode()
    assert DeviceFilter.objects.count() == 0


def test_saved_filter_admin_delete(admin_client: Any) -> None:
    make_device(inventory={"device_type": "rpi"})
    saved = create_device_filter(name="raspberries", terms=RPI)
    evaluate_device_filter(filter_id=saved.id)
    url = reverse("admin:devices_app_devicefilter_delete", args=[saved.pk])

    confirm = admin_client.get(url)
    response = admin_client.post(url, {"post": "yes"})

    assert confirm.status_code == 200
    assert response.status_code == 302
    assert DeviceFilter.objects.count() == 0
    assert FilterMembership.objects.count() == 0
