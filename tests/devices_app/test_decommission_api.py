"""Decommissioning as Mender does it: the device is gone from every management API (real server).

Internally the row stays: its deployment records keep their ``decommissioned`` status and its
identity can never authenticate again.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from deployments_app.models import DeviceDeployment
from deployments_app.services.creation import create_deployment
from devices_app.models import Device, DeviceToken
from devices_app.services.filters import create_device_filter
from devices_app.services.groups import add_devices_to_group
from tests import factories
from tests.device_keys import signed_auth_request
from tests.e2e.conftest import ManagementAPI

pytestmark = pytest.mark.django_db(transaction=True)

DEVAUTH = "/api/management/v2/devauth/devices"
INVENTORY_V1 = "/api/management/v1/inventory/devices"
SEARCH_V2 = "/api/management/v2/inventory/filters/search"
FILTERS_V2 = "/api/management/v2/inventory/filters"
GROUPS = "/api/management/v1/inventory/groups"
HISTORY = "/api/management/v1/deployments/deployments/devices"
AUTH = "/api/devices/v1/authentication/auth_requests"


@pytest.fixture
def fleet(live_management_api: ManagementAPI) -> dict[str, Any]:
    """Two accepted devices in group "ring" with a deployment each; the first is then decommissioned."""
    gone, gone_token = factories.accepted_device("02:00:00:00:dc:01")
    kept, _ = factories.accepted_device("02:00:00:00:dc:02")
    ids = [str(gone.id), str(kept.id)]
    add_devices_to_group(group_name="ring", device_ids=[gone.id, kept.id])
    saved = create_device_filter(
        name="ring",
        terms=[
            {"scope": "system", "attribute": "group", "type": "$eq", "value": "ring"}
        ],
    )
    factories.artifact("v2", ["probe-device"])
    deployment = create_deployment(name="to-v2", artifact_name="v2", devices=ids)
    response = live_management_api.delete(f"{DEVAUTH}/{gone.id}")
    assert response.status_code == 204, response.text
    return {
        "gone": str(gone.id),
        "kept": str(kept.id),
        "token": gone_token,
        "filter": str(saved.id),
        "deployment": str(deployment.pk),
    }


def ids_of(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


def assert_not_found(response: requests.Response) -> None:
    assert response.status_code == 404, response.text
    assert set(response.json()) == {"error", "request_id"}


def test_decommissioned_device_is_404_on_every_device_read(
    fleet: dict[str, Any], live_management_api: ManagementAPI
) -> None:
    api, gone = live_management_api, fleet["gone"]

    assert_not_found(api.get(f"{DEVAUTH}/{gone}"))
    assert_not_found(api.get(f"{INVENTORY_V1}/{gone}"))
    assert_not_found(api.get(f"{INVENTORY_V1}/{gone}/group"))
    assert_not_found(api.delete(f"{DEVAUTH}/{gone}"))  # already gone
    assert api.get(f"{DEVAUTH}/{fleet['kept']}").status_code == 200


def test_decommissioned_device_is_absent_from_lists_searches_and_counts(
    fleet: dict[str, Any], live_management_api: ManagementAPI
) -> None:
    api, kept = live_management_api, fleet["kept"]

    assert ids_of(api.get(DEVAUTH)) == [kept]
    assert ids_of(api.get(DEVAUTH, params={"status": "accepted"})) == [kept]
    assert ids_of(api.get(DEVAUTH, params={"id": [fleet["gone"], kept]})) == [kept]
    assert ids_of(api.post(f"{DEVAUTH}/search", json={"id": fleet["gone"]})) == []
    assert api.get(f"{DEVAUTH}/count").json() == {"count": 1}
    assert api.get(f"{DEVAUTH}/count", params={"status": "accepted"}).json() == {
        "count": 1
    }
    assert ids_of(api.get(INVENTORY_V1)) == [kept]
    assert ids_of(api.post(SEARCH_V2, json={})) == [kept]
    assert ids_of(api.get(f"{FILTERS_V2}/{fleet['filter']}/search")) == [kept]
    assert api.get(f"{GROUPS}/ring/devices").json() == [kept]
    assert api.get(DEVAUTH).headers["X-Total-Count"] == "1"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", DEVAUTH, {"params": {"status": "decommissioned"}}),
        ("GET", f"{DEVAUTH}/count", {"params": {"status": "decommissioned"}}),
        ("POST", f"{DEVAUTH}/search", {"json": {"status": "decommissioned"}}),
    ],
)
def test_decommissioned_is_no_status_filter(
    method: str,
    path: str,
    kwargs: dict[str, Any],
    fleet: dict[str, Any],
    live_management_api: ManagementAPI,
) -> None:
    response = live_management_api.request(method, path, **kwargs)

    assert response.status_code == 400, response.text
    assert "must be one of" in response.json()["error"]


def test_decommissioned_device_keeps_its_history_and_never_authenticates_again(
    fleet: dict[str, Any], live_management_api: ManagementAPI, live_server_url: str
) -> None:
    # then: the deployment record is kept, marked decommissioned
    record = DeviceDeployment.objects.get(
        deployment_id=fleet["deployment"], device_id=fleet["gone"]
    )
    assert record.status == "decommissioned"
    history = live_management_api.get(f"{HISTORY}/{fleet['gone']}")
    assert history.status_code == 200, history.text
    assert [item["device"]["status"] for item in history.json()] == ["decommissioned"]

    # and: its token is dead and its identity cannot get a new one
    ping = requests.get(
        f"{live_server_url}/api/devices/v1/flotilla/ping",
        headers={"Authorization": f"Bearer {fleet['token']}"},
        timeout=10,
    )
    assert ping.status_code == 401
    body, signature = signed_auth_request(factories._KEY, {"mac": "02:00:00:00:dc:01"})
    again = requests.post(
        f"{live_server_url}{AUTH}",
        data=body,
        headers={"Content-Type": "application/json", "X-MEN-Signature": signature},
        timeout=10,
    )
    assert again.status_code == 401
    assert Device.objects.get(pk=fleet["gone"]).status == "decommissioned"
    assert Device.objects.count() == 2
    assert not DeviceToken.objects.filter(device_id=fleet["gone"]).exists()


def test_auth_set_calls_on_a_decommissioned_device_are_404(
    fleet: dict[str, Any], live_management_api: ManagementAPI
) -> None:
    auth_set = Device.objects.get(pk=fleet["gone"]).auth_sets.get()
    path = f"{DEVAUTH}/{fleet['gone']}/auth/{auth_set.id}"

    assert_not_found(live_management_api.get(f"{path}/status"))
    assert_not_found(
        live_management_api.put(f"{path}/status", json={"status": "accepted"})
    )
    assert_not_found(live_management_api.delete(path))
    assert Device.objects.get(pk=fleet["gone"]).auth_sets.count() == 1
