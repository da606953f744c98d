"""The deployments list's ``type`` and ``sort`` as Mender's lookup parses them (real server)."""

from __future__ import annotations

import pytest

from deployments_app.models import Deployment
from deployments_app.services.creation import create_deployment
from tests import factories
from tests.e2e.conftest import ManagementAPI

pytestmark = pytest.mark.django_db(transaction=True)

DEPLOYMENTS = "/api/management/v1/deployments/deployments"


@pytest.fixture
def deployments(live_management_api: ManagementAPI) -> list[str]:
    """Three software deployments, oldest first."""
    device, _ = factories.accepted_device("02:00:00:00:d1:01")
    factories.artifact("v2", ["probe-device"])
    return [
        str(
            create_deployment(
                name=f"list-{number}", artifact_name="v2", devices=[str(device.id)]
            ).pk
        )
        for number in range(3)
    ]


def listed(api: ManagementAPI, **params: str) -> list[str]:
    response = api.get(DEPLOYMENTS, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


def test_type_software_lists_them_and_configuration_lists_none(
    deployments: list[str], live_management_api: ManagementAPI
) -> None:
    newest_first = deployments[::-1]

    assert listed(live_management_api, type="software") == newest_first
    assert listed(live_management_api) == newest_first
    response = live_management_api.get(DEPLOYMENTS, params={"type": "configuration"})
    assert response.status_code == 200, response.text
    assert response.json() == []
    assert response.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize(
    ("sort", "oldest_first"),
    [("asc", True), ("ASC", True), ("desc", False), ("Desc", False), ("", False)],
)
def test_sort_direction_any_case(
    sort: str,
    oldest_first: bool,
    deployments: list[str],
    live_management_api: ManagementAPI,
) -> None:
    expected = deployments if oldest_first else deployments[::-1]

    assert listed(live_management_api, sort=sort) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "sideways"}, 'invalid form value: must be one of "asc" or "desc"'),
        ({"sort": "created:asc"}, 'invalid form value: must be one of "asc" or "desc"'),
        ({"type": "firmware"}, "unknown deployment type firmware"),
        ({"type": "Software"}, "unknown deployment type Software"),
    ],
)
def test_invalid_sort_or_type_is_400(
    params: dict[str, str],
    message: str,
    deployments: list[str],
    live_management_api: ManagementAPI,
) -> None:
    response = live_management_api.get(DEPLOYMENTS, params=params)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == message
    assert Deployment.objects.count() == 3
