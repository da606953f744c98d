"""The deployment admin goes through the same services as the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from deployments_app.models import Deployment, DeploymentPhase, DeviceDeployment
from devices_app.services.filters import create_device_filter
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

ADD_URL = "/admin/deployments_app/deployment/add/"
LIST_URL = "/admin/deployments_app/deployment/"


def form(**fields: Any) -> dict[str, Any]:
    base = {
        "name": "from-admin",
        "release": "v2",
        "target": "devices",
        "retries": "0",
        "phases": "",
    }
    return {**base, **fields}


def test_admin_creates_static_deployment_and_shows_progress(
    admin_client: Client,
) -> None:
    device, _ = factories.accepted_device("02:00:00:00:50:01")
    factories.artifact("v2", ["probe-device"])

    response = admin_client.post(ADD_URL, form(devices=str(device.id)))

    assert response.status_code == 302
    deployment = Deployment.objects.get()
    assert (deployment.name, deployment.artifact_name, deployment.target_kind) == (
        "from-admin",
        "v2",
        "devices",
    )
    assert (
        DeviceDeployment.objects.filter(deployment=deployment, device=device).count()
        == 1
    )
    listing = admin_client.get(LIST_URL)
    assert listing.status_code == 200
    assert "0/1 finished, 0 success, 0 failure" in listing.content.decode()
    detail = admin_client.get(f"{LIST_URL}{deployment.pk}/change/")
    assert detail.status_code == 200
    assert str(device.id) in detail.content.decode()


def test_admin_creates_dynamic_phased_deployment(admin_client: Client) -> None:
    devices = factories.bulk_accepted_devices(10, prefix="adm")
    factories.artifact("v2", ["probe-device"])
    from devices_app.models import Device

    Device.objects.update(inventory={"ring": "one"})
    ring = create_device_filter(
        name="ring",
        terms=[
            {"scope": "inventory", "attribute": "ring", "type": "$eq", "value": "one"}
        ],
    )

    response = admin_client.post(
        ADD_URL,
        form(
            target="filter",
            device_filter=str(ring.pk),
            max_devices="8",
            retries="2",
            phases="20\nrest 2035-01-01T00:00:00Z",
        ),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    deployment = Deployment.objects.get()
    assert (deployment.target_kind, deployment.max_devices, deployment.retries) == (
        "dynamic",
        8,
        2,
    )
    assert deployment.initial_device_count == len(devices)
    phases = list(
        DeploymentPhase.objects.filter(deployment=deployment).order_by("number")
    )
    assert [(p.batch_size, p.capacity) for p in phases] == [(20, 2), (80, None)]
    detail = admin_client.get(f"{LIST_URL}{deployment.pk}/change/")
    assert "0 / 2" in detail.content.decode()
    assert "0 / unbounded" in detail.content.decode()


def test_admin_refuses_invalid_deployment_with_message(admin_client: Client) -> None:
    factories.artifact("v2", ["probe-device"])

    response = admin_client.post(
        ADD_URL, form(target="group", group="nobody"), follow=True
    )

    assert response.status_code == 200
    assert "No devices for the deployment" in response.content.decode()
    assert Deployment.objects.count() == 0


def test_admin_abort_action_uses_the_service(admin_client: Client) -> None:
    device, _ = factories.accepted_device("02:00:00:00:50:02")
    factories.artifact("v2", ["probe-device"])
    admin_client.post(ADD_URL, form(devices=str(device.id)))
    deployment = Deployment.objects.get()

    response = admin_client.post(
        LIST_URL,
        {"action": "abort_deployments", "_selected_action": [str(deployment.pk)]},
    )

    assert response.status_code == 302
    deployment.refresh_from_db()
    assert deployment.status == "finished"
    assert DeviceDeployment.objects.get().status == "aborted"
