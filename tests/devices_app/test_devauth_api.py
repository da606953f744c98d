from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from rest_framework.test import APIClient

from devices_app.models import AuthSet, Device, DeviceToken
from tests.device_keys import KEY_KINDS, DeviceKey, make_key, signed_auth_request

pytestmark = pytest.mark.django_db

AUTH_URL = "/api/devices/v1/authentication/auth_requests"
PING_URL = "/api/devices/v1/flotilla/ping"
DEVICES_URL = "/api/management/v2/devauth/devices"


@pytest.fixture(scope="module")
def keys() -> dict[str, DeviceKey]:
    return {kind: make_key(kind) for kind in KEY_KINDS}


def post_auth(client: APIClient, body: bytes, signature: str | None) -> Any:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": "Bearer "}
    if signature is not None:
        headers["HTTP_X_MEN_SIGNATURE"] = signature
    # Raw bytes on purpose (Django's generic() takes them; the stub says str).
    return client.generic(
        "POST",
        AUTH_URL,
        body,  # type: ignore[arg-type]
        content_type="application/json",
        **headers,
    )


def accept_device(management_client: APIClient, device: Device) -> None:
    auth_set = device.auth_sets.get()
    response = management_client.put(
        f"{DEVICES_URL}/{device.id}/auth/{auth_set.id}/status",
        {"status": "accepted"},
        format="json",
    )
    assert response.status_code == 204


def authenticated_device(
    api_client: APIClient, management_client: APIClient, key: DeviceKey, mac: str
) -> str:
    body, signature = signed_auth_request(key, {"mac": mac})
    assert post_auth(api_client, body, signature).status_code == 401
    accept_device(management_client, Device.objects.get(identity_data={"mac": mac}))
    response = post_auth(api_client, body, signature)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_auth_request_pending_then_accepted_gives_device_token(
    kind: str,
    keys: dict[str, DeviceKey],
    api_client: APIClient,
    management_client: APIClient,
) -> None:
    # given
    key = keys[kind]
    body, signature = signed_auth_request(key, {"mac": "02:00:00:00:00:01", "sku": "x"})

    # when: unknown identity
    first = post_auth(api_client, body, signature)

    # then: 401, a pending device with one pending auth set
    assert first.status_code == 401
    assert set(first.json()) == {"error", "request_id"}
    device = Device.objects.get()
    assert device.status == "pending"
    assert device.identity_data == {"mac": "02:00:00:00:00:01", "sku": "x"}
    assert list(device.auth_sets.values_list("status", flat=True)) == ["pending"]

    # when: the operator accepts and the device asks again
    accept_device(management_client, device)
    second = post_auth(api_client, body, signature)

    # then: 200 with a raw JWT naming the device
    assert second.status_code == 200
    assert second["Content-Type"] == "application/jwt"
    token = second.content.decode()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == str(device.id)
    assert claims["mender.device"] is True
    assert claims["exp"] > claims["iat"]
    assert DeviceToken.objects.filter(pk=claims["jti"], device=device).count() == 1
    assert (
        api_client.get(PING_URL, HTTP_AUTHORIZATION=f"Bearer {token}").status_code
        == 200
    )


@pytest.mark.parametrize("kind", KEY_KINDS)
@pytest.mark.parametrize("tamper", ["body", "signature"])
def test_flipped_byte_is_refused_with_401_and_stores_nothing(
    kind: str, tamper: str, keys: dict[str, DeviceKey], api_client: APIClient
) -> None:
    body, signature = signed_auth_request(keys[kind], {"mac": "02:00:00:00:00:02"})
    if tamper == "body":
        # an extra byte inside a JSON string keeps the body parseable but breaks the signature
        index = body.index(b'"tenant_token":""') + len('"tenant_token":"')
        body = body[:index] + b"X" + body[index:]
    else:
        raw = bytearray(base64.b64decode(signature))
        raw[len(raw) // 2] ^= 0x01
        signature = base64.b64encode(bytes(raw)).decode()

    response = post_auth(api_client, body, signature)

    assert response.status_code == 401
    assert Device.objects.count() == 0
    assert AuthSet.objects.count() == 0


def test_missing_signature_is_400(
    keys: dict[str, DeviceKey], api_client: APIClient
) -> None:
    body, _ = signed_auth_request(keys["p256"], {"mac": "02:00:00:00:00:03"})

    response = post_auth(api_client, body, None)

    assert response.status_code == 400
    assert "signature" in response.json()["error"]
    assert Device.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"id_data": {"mac": "x"}, "pubkey": "x"}).encode(),
        json.dumps({"id_data": "not json", "pubkey": "x"}).encode(),
        json.dumps({"id_data": '{"mac":"x"}', "pubkey": "not a key"}).encode(),
    ],
)
def test_malformed_auth_request_is_400(body: bytes, api_client: APIClient) -> None:
    response = post_auth(api_client, body, "c2lnbmF0dXJl")

    assert response.status_code == 400
    assert Device.objects.count() == 0


def test_new_key_for_known_identity_creates_a_new_auth_set(
    keys: dict[str, DeviceKey], api_client: APIClient
) -> None:
    for kind in ("p256", "ed25519"):
        body, signature = signed_auth_request(keys[kind], {"mac": "02:00:00:00:00:04"})
        assert post_auth(api_client, body, signature).status_code == 401

    device = Device.objects.get()
    assert device.auth_sets.count() == 2
    assert device.status == "pending"


@pytest.mark.parametrize("action", ["decommission", "reject"])
def test_decommissioned_or_rejected_device_token_is_refused_on_next_request(
    action: str,
    keys: dict[str, DeviceKey],
    api_client: APIClient,
    management_client: APIClient,
) -> None:
    # given a device holding a working token
    token = authenticated_device(
        api_client, management_client, keys["p256"], "02:00:00:00:00:05"
    )
    device = Device.objects.get()
    assert (
        api_client.get(PING_URL, HTTP_AUTHORIZATION=f"Bearer {token}").status_code
        == 200
    )

    # when
    if action == "decommission":
        assert management_client.delete(f"{DEVICES_URL}/{device.id}").status_code == 204
    else:
        auth_set = device.auth_sets.get()
        response = management_client.put(
            f"{DEVICES_URL}/{device.id}/auth/{auth_set.id}/status",
            {"status": "rejected"},
            format="json",
        )
        assert response.status_code == 204

    # then: the token is dead at once and the device cannot get a new one
    response = api_client.get(PING_URL, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert set(response.json()) == {"error", "request_id"}
    assert DeviceToken.objects.count() == 0
    body, signature = signed_auth_request(keys["p256"], {"mac": "02:00:00:00:00:05"})
    assert post_auth(api_client, body, signature).status_code == 401
    device.refresh_from_db()
    assert device.status == (
        "decommissioned" if action == "decommission" else "rejected"
    )


def test_tokens_are_not_interchangeable(
    keys: dict[str, DeviceKey],
    api_client: APIClient,
    management_client: APIClient,
    user_token: str,
) -> None:
    device_token = authenticated_device(
        api_client, management_client, keys["ed25519"], "02:00:00:00:00:06"
    )

    assert (
        api_client.get(PING_URL, HTTP_AUTHORIZATION=f"Bearer {user_token}").status_code
        == 401
    )
    assert (
        api_client.get(
            DEVICES_URL, HTTP_AUTHORIZATION=f"Bearer {device_token}"
        ).status_code
        == 401
    )
    assert api_client.get(DEVICES_URL).status_code == 401
    assert (
        api_client.get(PING_URL, HTTP_AUTHORIZATION="Bearer not-a-jwt").status_code
        == 401
    )


def test_preauthorized_device_is_accepted_on_first_request(
    keys: dict[str, DeviceKey], api_client: APIClient, management_client: APIClient
) -> None:
    key = keys["rsa2048"]
    response = management_client.post(
        DEVICES_URL,
        {"identity_data": {"mac": "02:00:00:00:00:07"}, "pubkey": key.public_pem},
        format="json",
    )
    assert response.status_code == 201
    device = Device.objects.get()
    assert response["Location"] == f"devices/{device.id}"
    assert device.status == "preauthorized"

    body, signature = signed_auth_request(key, {"mac": "02:00:00:00:00:07"})
    assert post_auth(api_client, body, signature).status_code == 200
    device.refresh_from_db()
    assert device.status == "accepted"

    duplicate = management_client.post(
        DEVICES_URL,
        {"identity_data": {"mac": "02:00:00:00:00:07"}, "pubkey": key.public_pem},
        format="json",
    )
    assert duplicate.status_code == 409
    assert Device.objects.count() == 1


def test_device_list_shape_paging_and_count(
    keys: dict[str, DeviceKey], api_client: APIClient, management_client: APIClient
) -> None:
    for index in range(3):
        body, signature = signed_auth_request(
            keys["p256"], {"mac": f"02:00:00:00:01:0{index}"}
        )
        post_auth(api_client, body, signature)

    response = management_client.get(DEVICES_URL, {"per_page": 2})

    assert response.status_code == 200
    assert response["X-Total-Count"] == "3"
    assert 'rel="next"' in response["Link"]
    devices = response.json()
    assert len(devices) == 2
    assert devices[0]["identity_data"] == {"mac": "02:00:00:00:01:00"}
    assert devices[0]["status"] == "pending"
    assert set(devices[0]["auth_sets"][0]) == {
        "id",
        "identity_data",
        "pubkey",
        "ts",
        "status",
    }
    assert management_client.get(
        f"{DEVICES_URL}/count", {"status": "pending"}
    ).json() == {"count": 3}
    assert management_client.get(
        f"{DEVICES_URL}/count", {"status": "accepted"}
    ).json() == {"count": 0}
    assert management_client.get(DEVICES_URL, {"per_page": 0}).status_code == 400
    assert management_client.get(DEVICES_URL, {"status": "bogus"}).status_code == 400


def test_login_with_basic_auth_returns_user_token(
    operator: Any, api_client: APIClient
) -> None:
    credentials = base64.b64encode(b"OPS@example.com:secret-pass-123").decode()
    response = api_client.post(
        "/api/management/v1/useradm/auth/login",
        HTTP_AUTHORIZATION=f"Basic {credentials}",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jwt"
    token = response.content.decode()
    assert (
        api_client.get(DEVICES_URL, HTTP_AUTHORIZATION=f"Bearer {token}").status_code
        == 200
    )

    wrong = base64.b64encode(b"ops@example.com:nope").decode()
    bad = api_client.post(
        "/api/management/v1/useradm/auth/login", HTTP_AUTHORIZATION=f"Basic {wrong}"
    )
    assert bad.status_code == 401
    assert set(bad.json()) == {"error", "request_id"}
