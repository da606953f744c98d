"""A dynamic deployment sees the fleet as it is at creation, through the real server process.

The worker that materialises a saved filter's membership may not have run yet when an operator
(or a script) creates the deployment right after the filter. Each test runs with the filter in
three states: saved through the API (evaluated at once: the test settings run Celery eagerly),
saved but not evaluated yet (the row ``create_device_filter`` commits before its evaluation
task runs), and evaluated but with a membership table that has drifted to empty.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.db import connection
from django.utils import timezone

from deployments_app.models import DeploymentPhase, DeviceDeployment
from devices_app.models import DeviceFilter, FilterMembership
from tests import factories
from tests.e2e.conftest import ManagementAPI

pytestmark = pytest.mark.django_db(transaction=True)

NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"
FILTERS = "/api/management/v2/inventory/filters"
DYNAMIC_DEPLOYMENTS = "/api/management/v2/deployments/deployments"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
RING_TERMS = [
    {"scope": "inventory", "attribute": "ring", "type": "$eq", "value": "canary"}
]


def fleet(count: int, *, ring: str = "canary", prefix: str = "dyn") -> list[str]:
    """``count`` accepted devices whose inventory has ``ring``; their device tokens.

    The inventory already holds what their polls report, so a poll changes nothing in it (and
    does not re-check the device's memberships on the way).
    """
    devices = factories.bulk_accepted_devices(count, prefix=prefix)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE devices_app_device SET inventory = jsonb_build_object("
            "'ring', %s, 'artifact_name', 'v1', 'device_type', 'probe-device') "
            "WHERE id = ANY(%s::uuid[])",
            [ring, [str(device.id) for device, _ in devices]],
        )
    return [token for _, token in devices]


def saved_via_api(api: ManagementAPI) -> str:
    response = api.post(FILTERS, json={"name": "ring", "terms": RING_TERMS})
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def saved_not_evaluated(api: ManagementAPI) -> str:
    saved = DeviceFilter.objects.create(name="ring", terms=RING_TERMS)
    assert saved.evaluated_ts is None
    return str(saved.id)


def saved_with_drifted_membership(api: ManagementAPI) -> str:
    filter_id = saved_via_api(api)
    assert DeviceFilter.objects.get(pk=filter_id).evaluated_ts is not None
    FilterMembership.objects.filter(device_filter_id=uuid.UUID(filter_id)).delete()
    return filter_id


FILTER_STATES: dict[str, Callable[[ManagementAPI], str]] = {
    "api": saved_via_api,
    "not-evaluated": saved_not_evaluated,
    "drifted": saved_with_drifted_membership,
}


@pytest.fixture(params=list(FILTER_STATES))
def save_filter(request: pytest.FixtureRequest) -> Callable[[ManagementAPI], str]:
    return FILTER_STATES[request.param]


def create(api: ManagementAPI, **body: Any) -> requests.Response:
    return api.post(DYNAMIC_DEPLOYMENTS, json={"artifact_name": "v2", **body})


def deployment(api: ManagementAPI, response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    deployment_id = response.headers["Location"].rsplit("/", 1)[-1]
    shown = api.get(f"{DEPLOYMENTS}/{deployment_id}")
    assert shown.status_code == 200, shown.text
    return shown.json()


def poll(base_url: str, token: str) -> requests.Response:
    return requests.post(
        f"{base_url}{NEXT_V2}",
        json={
            "device_provides": {"artifact_name": "v1", "device_type": "probe-device"}
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_phased_deployment_on_a_new_filter_splits_80_20(
    live_management_api: ManagementAPI,
    live_server_url: str,
    save_filter: Callable[[ManagementAPI], str],
) -> None:
    # given: 10 matching devices, 3 others, the filter and the deployment in the same second
    tokens = fleet(10)
    others = fleet(3, ring="stable", prefix="other")
    factories.artifact("v2", ["probe-device"])
    later = timezone.now() + dt.timedelta(hours=1)
    filter_id = save_filter(live_management_api)

    # when
    created = deployment(
        live_management_api,
        create(
            live_management_api,
            name="canary",
            filter_id=filter_id,
            phases=[{"batch_size": 80}, {"start_ts": later.isoformat()}],
        ),
    )

    # then: sized from the 10 devices matching now
    assert created["initial_device_count"] == 10
    assert "max_devices" not in created
    assert [p["batch_size"] for p in created["phases"]] == [80, 20]
    phases = DeploymentPhase.objects.filter(deployment_id=created["id"])
    assert list(phases.order_by("number").values_list("capacity", flat=True)) == [
        8,
        None,  # the last phase of a dynamic deployment takes every later joiner
    ]
    if save_filter is saved_with_drifted_membership:
        return  # polls trust a known membership; repairing drift is the re-evaluation's job

    # when: every device polls during the first phase
    first = [poll(live_server_url, token).status_code for token in [*tokens, *others]]

    # then: 8 matching devices are admitted, nobody else
    assert first[:10].count(200) == 8
    assert first[:10].count(204) == 2
    assert first[10:] == [204, 204, 204]

    # when: the second phase starts and everyone polls again
    phases.filter(number=2).update(start_ts=timezone.now() - dt.timedelta(seconds=1))
    second = [poll(live_server_url, token).status_code for token in [*tokens, *others]]

    # then: the remaining 2 join (the 8 resume), the other ring still gets nothing
    assert second == [200] * 10 + [204, 204, 204]
    assert [p.device_count for p in phases.order_by("number")] == [8, 2]
    assert DeviceDeployment.objects.filter(deployment_id=created["id"]).count() == 10


def test_unphased_deployment_on_a_new_filter_counts_the_matching_devices(
    live_management_api: ManagementAPI,
    live_server_url: str,
    save_filter: Callable[[ManagementAPI], str],
) -> None:
    # given
    tokens = fleet(10)
    fleet(4, ring="stable", prefix="other")
    factories.artifact("v2", ["probe-device"])
    filter_id = save_filter(live_management_api)

    # when
    created = deployment(
        live_management_api,
        create(live_management_api, name="all", filter_id=filter_id),
    )

    # then
    assert created["initial_device_count"] == 10
    assert created["dynamic"] is True
    assert "max_devices" not in created
    assert "phases" not in created
    if save_filter is not saved_with_drifted_membership:
        assert [poll(live_server_url, t).status_code for t in tokens] == [200] * 10


def test_max_devices_on_a_new_filter_caps_admissions(
    live_management_api: ManagementAPI,
    live_server_url: str,
    save_filter: Callable[[ManagementAPI], str],
) -> None:
    # given
    tokens = fleet(10)
    factories.artifact("v2", ["probe-device"])
    filter_id = save_filter(live_management_api)

    # when
    created = deployment(
        live_management_api,
        create(live_management_api, name="capped", filter_id=filter_id, max_devices=3),
    )

    # then
    assert created["initial_device_count"] == 10
    assert created["max_devices"] == 3
    if save_filter is not saved_with_drifted_membership:
        codes = [poll(live_server_url, token).status_code for token in tokens]
        assert (codes.count(200), codes.count(204)) == (3, 7)
        assert DeviceDeployment.objects.filter(deployment_id=created["id"]).count() == 3


def test_phased_deployment_on_a_filter_nobody_matches_is_rejected(
    live_management_api: ManagementAPI, save_filter: Callable[[ManagementAPI], str]
) -> None:
    # given: devices, none of them in the ring
    fleet(5, ring="stable")
    factories.artifact("v2", ["probe-device"])
    filter_id = save_filter(live_management_api)
    later = timezone.now() + dt.timedelta(hours=1)

    # when
    response = create(
        live_management_api,
        name="nobody",
        filter_id=filter_id,
        phases=[{"batch_size": 50}, {"start_ts": later.isoformat()}],
    )

    # then
    assert response.status_code == 400, response.text
    assert "No devices for the deployment" in response.json()["error"]
    assert not DeploymentPhase.objects.exists()


def test_a_matching_device_polling_right_after_creation_is_admitted(
    live_management_api: ManagementAPI, live_server_url: str
) -> None:
    # given: the filter is saved but its membership is not computed yet
    token = fleet(1)[0]
    outsider = fleet(1, ring="stable", prefix="other")[0]
    factories.artifact("v2", ["probe-device"])
    filter_id = saved_not_evaluated(live_management_api)

    # when: the device polls within 100 ms of the deployment's creation
    response = create(live_management_api, name="fresh", filter_id=filter_id)
    created_at = time.monotonic()
    poll_sent_after = time.monotonic() - created_at
    answer = poll(live_server_url, token)

    # then: it gets the deployment on that poll; the outsider does not
    assert response.status_code == 201, response.text
    deployment_id = response.headers["Location"].rsplit("/", 1)[-1]
    assert poll_sent_after < 0.1
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == deployment_id
    assert poll(live_server_url, outsider).status_code == 204
    assert not FilterMembership.objects.filter(
        device_filter_id=uuid.UUID(filter_id)
    ).exists()
    assert DeviceDeployment.objects.filter(deployment_id=deployment_id).count() == 1


def test_an_older_unevaluated_filter_the_device_does_not_match_is_passed_over(
    live_management_api: ManagementAPI, live_server_url: str
) -> None:
    # given: two filters nobody evaluated yet; the older deployment's filter misses the device
    token = fleet(1)[0]
    factories.artifact("v2", ["probe-device"])
    stable = DeviceFilter.objects.create(
        name="stable", terms=[{**RING_TERMS[0], "value": "stable"}]
    )
    canary = saved_not_evaluated(live_management_api)
    older = create(live_management_api, name="older", filter_id=str(stable.id))
    newer = create(live_management_api, name="newer", filter_id=canary)
    assert (older.status_code, newer.status_code) == (201, 201)

    # when
    answer = poll(live_server_url, token)

    # then
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == newer.headers["Location"].rsplit("/", 1)[-1]
    assert DeviceDeployment.objects.count() == 1
