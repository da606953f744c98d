"""Inventory with the real Mender 3.4 client against the real server process."""

from __future__ import annotations

from typing import Any

import pytest

from devices_app.models import Device, DeviceFilter, FilterMembership
from tests.e2e.conftest import ManagementAPI
from tests.e2e.mender_harness import wait_for
from tests.fixtures.live_server import AccessLog

pytestmark = pytest.mark.e2e

INVENTORY = "/api/devices/v1/inventory/device/attributes"
INVENTORY_DEVICES = "/api/management/v1/inventory/devices"


def test_real_client_inventory_is_stored_and_repeats_cost_no_write(
    mender_fleet: Any,
    management_api: ManagementAPI,
    live_server_access_log: AccessLog,
) -> None:
    # given: a saved filter the client's inventory will match, and a client accepted via the API
    saved = DeviceFilter.objects.create(
        name="probe devices",
        terms=[
            {
                "scope": "inventory",
                "attribute": "device_type",
                "type": "$eq",
                "value": "probe-device",
            },
            {
                "scope": "inventory",
                "attribute": "probe_list",
                "type": "$eq",
                "value": "b",
            },
        ],
    )
    fleet = mender_fleet(
        1, key_type="p256", retry_poll=1, update_poll=2, inventory_poll=60
    )
    client = fleet.clients[0]
    pending = wait_for(
        lambda: management_api.device_by_identity(client.identity),
        timeout=20,
        description=f"a device with identity {client.identity}",
        diagnostics=fleet.diagnostics,
    )
    accepted = management_api.set_auth_set_status(
        pending["id"], pending["auth_sets"][0]["id"], "accepted"
    )
    assert accepted.status_code == 204, accepted.text

    # when: the client authenticates and sends its inventory (PUT, chunked body)
    wait_for(
        lambda: live_server_access_log.matching("PUT", INVENTORY, 200),
        timeout=15,
        description="the inventory PUT answered 200",
        diagnostics=fleet.diagnostics,
    )

    # then: exactly 200 every time, and the attributes are stored
    assert {e.status for e in live_server_access_log.matching(path=INVENTORY)} == {200}
    device = Device.objects.get(pk=pending["id"])
    inventory = device.inventory
    assert inventory["device_type"] == "probe-device"
    assert inventory["artifact_name"] == "original"
    assert inventory["mender_client_version"].startswith("3.4.0")
    assert inventory["probe_list"] == ["a", "b"]
    assert inventory["hostname"] == f"probe-{client.name}"
    assert inventory["probe_client"] == client.name
    # ... visible through the management API, and the saved filter already has the device
    detail = management_api.get(f"{INVENTORY_DEVICES}/{device.id}")
    assert detail.status_code == 200, detail.text
    shown = {(a["scope"], a["name"]): a["value"] for a in detail.json()["attributes"]}
    assert shown[("inventory", "probe_list")] == ["a", "b"]
    assert shown[("identity", "mac")] == client.identity["mac"]
    assert FilterMembership.objects.filter(device_filter=saved, device=device).exists()

    # when: the client sends the same inventory again (SIGUSR2 = send inventory now)
    puts_before = len(live_server_access_log.matching("PUT", INVENTORY))
    updated_before = device.updated_ts
    client.send_sigusr2()
    wait_for(
        lambda: len(live_server_access_log.matching("PUT", INVENTORY)) > puts_before,
        timeout=15,
        description="a second inventory PUT",
        diagnostics=fleet.diagnostics,
    )

    # then: 200 again, and the row was not rewritten (every inventory write moves updated_ts)
    assert {e.status for e in live_server_access_log.matching(path=INVENTORY)} == {200}
    device.refresh_from_db()
    assert device.updated_ts == updated_before
    assert device.inventory == inventory
