"""HTTP helpers for deployment-engine tests: what the Mender client sends, through the real views."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.test import APIClient

NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"
NEXT_V1 = "/api/devices/v1/deployments/device/deployments/next"
DEVICE_DEPLOYMENTS = "/api/devices/v1/deployments/device/deployments"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
INVENTORY_DEVICES = "/api/management/v1/inventory/devices"


def poll(
    client: APIClient,
    token: str,
    artifact_name: str,
    device_type: str = "probe-device",
    **provides: str,
) -> Any:
    body = {
        "device_provides": {
            "artifact_name": artifact_name,
            "device_type": device_type,
            **provides,
        },
        "update_control_map": True,
    }
    return client.post(
        NEXT_V2, body, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def report(
    client: APIClient, token: str, deployment_id: str, status: str, **extra: Any
) -> Any:
    return client.put(
        f"{DEVICE_DEPLOYMENTS}/{deployment_id}/status",
        {"status": status, **extra},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def install(
    client: APIClient, token: str, deployment_id: str, outcome: str = "success"
) -> None:
    for status in ("downloading", "installing", outcome):
        response = report(client, token, deployment_id, status)
        assert response.status_code == 204, response.content


def create_deployment(management_client: APIClient, **body: Any) -> str:
    response = management_client.post(DEPLOYMENTS, body, format="json")
    assert response.status_code == 201, response.content
    return response["Location"].rsplit("/", 1)[-1]


def create_group_deployment(
    management_client: APIClient, group: str, **body: Any
) -> str:
    response = management_client.post(
        f"{DEPLOYMENTS}/group/{group}", body, format="json"
    )
    assert response.status_code == 201, response.content
    return response["Location"].rsplit("/", 1)[-1]


def set_group(management_client: APIClient, device_id: uuid.UUID, group: str) -> None:
    response = management_client.put(
        f"{INVENTORY_DEVICES}/{device_id}/group", {"group": group}, format="json"
    )
    assert response.status_code == 204, response.content


def clear_group(management_client: APIClient, device_id: uuid.UUID, group: str) -> None:
    response = management_client.delete(
        f"{INVENTORY_DEVICES}/{device_id}/group/{group}"
    )
    assert response.status_code == 204, response.content


FILTERS = "/api/management/v2/inventory/filters"
DEVICE_INVENTORY = "/api/devices/v1/inventory/device/attributes"


def create_filter(
    management_client: APIClient, name: str, terms: list[dict[str, Any]]
) -> str:
    response = management_client.post(
        FILTERS, {"name": name, "terms": terms}, format="json"
    )
    assert response.status_code == 201, response.content
    return response["Location"].rsplit("/", 1)[-1]


def eq_term(attribute: str, value: Any, scope: str = "inventory") -> dict[str, Any]:
    return {"scope": scope, "attribute": attribute, "type": "$eq", "value": value}


def send_inventory(client: APIClient, token: str, **attributes: Any) -> None:
    body = [{"name": name, "value": value} for name, value in attributes.items()]
    response = client.patch(
        DEVICE_INVENTORY, body, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200, response.content


def create_dynamic_deployment(management_client: APIClient, **body: Any) -> str:
    response = management_client.post(
        "/api/management/v2/deployments/deployments", body, format="json"
    )
    assert response.status_code == 201, response.content
    return response["Location"].rsplit("/", 1)[-1]
