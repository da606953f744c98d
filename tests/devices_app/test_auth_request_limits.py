"""The unauthenticated auth request is bounded (issue 12, item 2, sizes): identity data and keys are capped.

Limits: FLOTILLA_MAX_IDENTITY_DATA_SIZE (4096 bytes of id_data), FLOTILLA_MAX_PUBKEY_SIZE
(8192 bytes of PEM), FLOTILLA_MAX_JSON_BODY (1 MiB, Mender deviceauth's request_size_limit).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from devices_app.exceptions import DeviceNotAccepted
from devices_app.models import AuthSet, Device
from devices_app.services import devauth
from tests.api_surface import table_fingerprint
from tests.device_keys import DeviceKey, auth_request_body, make_key

pytestmark = pytest.mark.django_db

AUTH_URL = "/api/devices/v1/authentication/auth_requests"
DEVICES_URL = "/api/management/v2/devauth/devices"
IDENTITY_LIMIT = 4096


@pytest.fixture(scope="module")
def key() -> DeviceKey:
    return make_key("p256")


def identity_of_size(size: int, mac: str = "02:00:00:00:00:01") -> dict[str, str]:
    """An identity whose canonical id_data is exactly ``size`` bytes."""
    empty = json.dumps({"blob": "", "mac": mac}, sort_keys=True, separators=(",", ":"))
    return {"mac": mac, "blob": "x" * (size - len(empty))}


def post_signed(client: APIClient, key: DeviceKey, body: bytes) -> Any:
    return client.generic(
        "POST",
        AUTH_URL,
        # DRF's stub says str; generic() hands data to Django's, which takes bytes (force_bytes).
        body,  # type: ignore[arg-type]
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer ",
        HTTP_X_MEN_SIGNATURE=key.sign(body),
    )


def raw_auth_body(id_data: str, pubkey: str) -> bytes:
    return json.dumps(
        {"id_data": id_data, "tenant_token": "", "pubkey": pubkey}
    ).encode()


def test_identity_at_the_limit_is_stored_as_pending(
    api_client: APIClient, key: DeviceKey
) -> None:
    response = post_signed(
        api_client, key, auth_request_body(key, identity_of_size(IDENTITY_LIMIT))
    )

    assert response.status_code == 401
    assert Device.objects.get().status == "pending"


def test_identity_over_the_limit_is_400_and_stores_nothing(
    api_client: APIClient, key: DeviceKey
) -> None:
    before = table_fingerprint()

    response = post_signed(
        api_client, key, auth_request_body(key, identity_of_size(IDENTITY_LIMIT + 1))
    )

    assert response.status_code == 400
    assert (
        "identity data is 4097 bytes, over the limit of 4096"
        in response.json()["error"]
    )
    assert table_fingerprint() == before


def test_pubkey_over_the_limit_is_400_and_stores_nothing(
    api_client: APIClient, key: DeviceKey
) -> None:
    before = table_fingerprint()
    padded_pem = key.public_pem + "\n" * 8192

    response = post_signed(api_client, key, raw_auth_body('{"mac":"m"}', padded_pem))

    assert response.status_code == 400
    assert "pubkey is" in response.json()["error"]
    assert table_fingerprint() == before


def test_four_megabyte_auth_request_is_413_and_stores_nothing(
    api_client: APIClient, key: DeviceKey
) -> None:
    """The measured failure: 4 MB identities were stored as pending devices."""
    before = table_fingerprint()
    body = auth_request_body(key, identity_of_size(4 * 1024 * 1024))

    response = post_signed(api_client, key, body)

    assert response.status_code == 413
    assert set(response.json()) == {"error", "request_id"}
    assert table_fingerprint() == before


@pytest.mark.parametrize(
    "id_data",
    [
        '{"mac":"a\\u0000b"}',
        '{"mac":"\\ud800"}',
        '{"a\\u0000":"b"}',
        '{"mac":' * 40 + '"x"' + "}" * 40,
        '{"n":1' + "0" * 40 + "}",
    ],
    ids=["nul-value", "lone-surrogate", "nul-key", "nested-40", "huge-integer"],
)
def test_identity_with_unstorable_values_is_400_and_stores_nothing(
    api_client: APIClient, key: DeviceKey, id_data: str
) -> None:
    before = table_fingerprint()

    response = post_signed(api_client, key, raw_auth_body(id_data, key.public_pem))

    assert response.status_code == 400, response.content
    assert table_fingerprint() == before


def test_preauthorized_identity_over_the_limit_is_400(
    management_client: APIClient, key: DeviceKey
) -> None:
    response = management_client.post(
        DEVICES_URL,
        {
            "identity_data": identity_of_size(IDENTITY_LIMIT + 1),
            "pubkey": key.public_pem,
        },
        format="json",
    )

    assert response.status_code == 400
    assert Device.objects.count() == 0


def test_limits_follow_the_settings(
    api_client: APIClient, key: DeviceKey, settings: Any
) -> None:
    settings.FLOTILLA_MAX_IDENTITY_DATA_SIZE = 100
    body = auth_request_body(key, identity_of_size(101))

    assert post_signed(api_client, key, body).status_code == 400
    settings.FLOTILLA_MAX_IDENTITY_DATA_SIZE = 101
    assert post_signed(api_client, key, body).status_code == 401


def test_a_page_of_pending_devices_with_largest_identities_stays_small(
    management_client: APIClient, key: DeviceKey
) -> None:
    # given: 60 pending devices, each with an identity at the limit
    for number in range(60):
        body = auth_request_body(
            key, identity_of_size(IDENTITY_LIMIT, mac=f"02:00:00:00:{number:05d}")
        )
        with contextlib.suppress(DeviceNotAccepted):
            devauth.submit_auth_request(raw_body=body, signature=key.sign(body))
    assert AuthSet.objects.filter(status="pending").count() == 60

    # when
    devauth_page = management_client.get(f"{DEVICES_URL}?status=pending&per_page=20")
    inventory_page = management_client.get(
        "/api/management/v1/inventory/devices?per_page=20"
    )

    # then: each device carries its identity twice (device, auth set) and one key, nothing more
    per_device = 2 * IDENTITY_LIMIT + len(key.public_pem) + 1024
    assert devauth_page.status_code == 200
    assert len(devauth_page.json()) == 20
    assert devauth_page["X-Total-Count"] == "60"
    assert len(devauth_page.content) < 20 * per_device
    assert inventory_page.status_code == 200
    assert len(inventory_page.json()) == 20
    assert len(inventory_page.content) < 20 * per_device


def test_pending_keys_per_device_are_capped(
    api_client: APIClient, settings: Any
) -> None:
    # given: a device whose identity already has the maximum of pending keys
    settings.FLOTILLA_MAX_PENDING_AUTH_SETS = 3
    identity = {"mac": "02:00:00:00:00:42"}
    keys = [make_key("p256") for _ in range(4)]
    for key in keys[:3]:
        assert (
            post_signed(api_client, key, auth_request_body(key, identity)).status_code
            == 401
        )
    before = table_fingerprint()

    # when: a fourth key arrives, and one of the three known keys again
    refused = post_signed(api_client, keys[3], auth_request_body(keys[3], identity))
    repeated = post_signed(api_client, keys[0], auth_request_body(keys[0], identity))

    # then
    assert refused.status_code == 400
    assert "already has 3 pending keys" in refused.json()["error"]
    assert repeated.status_code == 401
    assert table_fingerprint() == before
    assert AuthSet.objects.filter(device__identity_data=identity).count() == 3
