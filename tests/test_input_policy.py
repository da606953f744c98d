"""The input policy at the edge (issue 12, item 1): every input that used to answer 500 answers 4xx.

Each case is one of the measured failures; each asserts the status, the JSON error body and
that no project table changed (tests.api_surface.table_fingerprint).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from tests import factories
from tests.api_surface import api_endpoints, table_fingerprint
from tests.deployments_app.engine_helpers import (
    DEPLOYMENTS,
    DEVICE_DEPLOYMENTS,
    create_deployment,
    poll,
)

pytestmark = pytest.mark.django_db

NUL = "a\u0000b"
SURROGATE = "x\ud800y"
DEVICE_ATTRIBUTES = "/api/devices/v1/inventory/device/attributes"
NEXT_V1 = "/api/devices/v1/deployments/device/deployments/next"
INVENTORY = "/api/management/v1/inventory"
FILTERS = "/api/management/v2/inventory/filters"
ARTIFACTS = "/api/management/v1/deployments/artifacts"
DEVAUTH_DEVICES = "/api/management/v2/devauth/devices"


def _client(token: str | None = None) -> APIClient:
    client = APIClient(raise_request_exception=False)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _json(client: APIClient, method: str, path: str, body: Any) -> Any:
    """Send ``body`` as JSON text exactly (lone surrogates and NULs included)."""
    text = body if isinstance(body, str | bytes) else json.dumps(body)
    # DRF's stub says str; generic() hands data to Django's, which takes bytes (force_bytes).
    return client.generic(method, path, text, content_type="application/json")  # type: ignore[arg-type]


def assert_refused(response: Any, status: int = 400) -> None:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]


@pytest.fixture
def device() -> tuple[Any, str]:
    return factories.accepted_device("02:00:00:00:aa:01")


@pytest.fixture
def device_client(device: tuple[Any, str]) -> APIClient:
    return _client(device[1])


@pytest.fixture
def user_client(user_token: str) -> APIClient:
    return _client(user_token)


@pytest.fixture
def active_deployment(
    user_client: APIClient, device: tuple[Any, str], django_capture_on_commit_callbacks
) -> str:
    """A deployment the device has polled (so its log endpoint reaches the database)."""
    factories.artifact("release-1", ["probe-device"])
    with django_capture_on_commit_callbacks(execute=True):
        deployment_id = create_deployment(
            user_client,
            name="rollout",
            artifact_name="release-1",
            devices=[str(device[0].id)],
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert poll(APIClient(), device[1], "release-0").status_code == 200
    return deployment_id


# ------------------------------------------------------------------ device-facing


@pytest.mark.parametrize("message", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
def test_device_log_with_unstorable_message_is_400(
    device_client: APIClient, active_deployment: str, message: str
) -> None:
    # given
    before = table_fingerprint()
    entry = {"timestamp": "2024-01-01T00:00:00Z", "level": "info", "message": message}

    # when
    response = _json(
        device_client,
        "PUT",
        f"{DEVICE_DEPLOYMENTS}/{active_deployment}/log",
        {"messages": [entry]},
    )

    # then
    assert_refused(response)
    assert table_fingerprint() == before


@pytest.mark.parametrize(
    "attribute",
    [
        {"name": "kernel", "value": SURROGATE},
        {"name": NUL, "value": "1"},
        {"name": "list", "value": ["ok", NUL]},
    ],
    ids=["surrogate-value", "nul-name", "nul-in-list"],
)
def test_device_inventory_with_unstorable_text_is_400(
    device_client: APIClient, attribute: dict[str, Any]
) -> None:
    before = table_fingerprint()
    for method in ("PUT", "PATCH"):
        assert_refused(_json(device_client, method, DEVICE_ATTRIBUTES, [attribute]))
    assert table_fingerprint() == before


def test_device_poll_with_nul_in_query_is_400(device_client: APIClient) -> None:
    before = table_fingerprint()
    response = device_client.get(f"{NEXT_V1}?artifact_name=a%00b&device_type=d")
    assert_refused(response)
    assert table_fingerprint() == before


# ------------------------------------------------------------------ management: query and path


@pytest.mark.parametrize(
    "url",
    [
        f"{DEPLOYMENTS}?search=%00",
        f"{DEPLOYMENTS}?sort=%00",
        f"{INVENTORY}/devices?sort=%00",
        f"{INVENTORY}/devices?group=%00",
        f"{INVENTORY}/devices?name=%00",
        f"{INVENTORY}/devices?kernel=%00",
        f"{ARTIFACTS}?name=%00",
        f"{DEVAUTH_DEVICES}?id=%00",
        f"{INVENTORY}/groups/a%00b/devices",
        f"{DEPLOYMENTS}?search={'x' * 4097}",
    ],
)
def test_unstorable_query_or_path_is_400(user_client: APIClient, url: str) -> None:
    before = table_fingerprint()
    assert_refused(user_client.get(url))
    assert table_fingerprint() == before


def test_device_id_filter_that_is_no_uuid_matches_nothing(
    user_client: APIClient,
) -> None:
    # Mender's deviceauth compares ids as strings: a malformed one finds no device.
    response = user_client.get(f"{DEVAUTH_DEVICES}?id=c")
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize(
    "url",
    [
        f"{DEPLOYMENTS}?page={2**63}",
        f"{DEPLOYMENTS}?page={2**63 // 20 + 1}",
        f"{INVENTORY}/devices?page={2**63}",
        f"{DEVAUTH_DEVICES}?page={2**62}&per_page=500",
        f"{FILTERS}?page={10**40}",
    ],
)
def test_page_beyond_bigint_is_400(user_client: APIClient, url: str) -> None:
    assert_refused(user_client.get(url))


# ------------------------------------------------------------------ management: JSON bodies


@pytest.mark.parametrize(
    "body",
    [
        {"name": NUL, "terms": []},
        {
            "name": "ok",
            "terms": [
                {
                    "scope": "inventory",
                    "attribute": "a",
                    "type": "$eq",
                    "value": SURROGATE,
                }
            ],
        },
        {
            "name": "ok",
            "terms": [
                {"scope": "inventory", "attribute": NUL, "type": "$eq", "value": "1"}
            ],
        },
        {
            "name": "ok",
            "terms": [
                {"scope": "inventory", "attribute": "a", "type": "$gt", "value": 10**40}
            ],
        },
    ],
    ids=["nul-name", "surrogate-term", "nul-attribute", "huge-number"],
)
def test_saved_filter_with_bad_values_is_400(
    user_client: APIClient, body: dict[str, Any]
) -> None:
    before = table_fingerprint()
    assert_refused(_json(user_client, "POST", FILTERS, body))
    assert table_fingerprint() == before


@pytest.mark.parametrize(
    "body",
    [
        {
            "filters": [
                {
                    "scope": "inventory",
                    "attribute": "a",
                    "type": "$eq",
                    "value": SURROGATE,
                }
            ]
        },
        {
            "filters": [
                {"scope": "inventory", "attribute": "a", "type": "$lt", "value": 10**40}
            ]
        },
        {
            "filters": [
                {
                    "scope": "inventory",
                    "attribute": "a",
                    "type": "$in",
                    "value": [1, -(10**40)],
                }
            ]
        },
        {"page": 2**63},
        {"page": 2**62, "per_page": 500},
        {"sort": [{"scope": "inventory", "attribute": NUL}]},
    ],
)
def test_device_search_with_bad_values_is_400(
    user_client: APIClient, body: dict[str, Any]
) -> None:
    assert_refused(_json(user_client, "POST", f"{FILTERS}/search", body))


def test_tags_with_lone_surrogate_are_400(
    user_client: APIClient, device: tuple[Any, str]
) -> None:
    before = table_fingerprint()
    url = f"{INVENTORY}/devices/{device[0].id}/tags"
    for method in ("PUT", "PATCH"):
        for tag in (
            {"name": "t", "value": SURROGATE},
            {"name": SURROGATE, "value": "v"},
        ):
            assert_refused(_json(user_client, method, url, [tag]))
    assert table_fingerprint() == before


@pytest.mark.parametrize("max_devices", [2**31, 2**40, 2**63])
def test_dynamic_deployment_max_devices_beyond_integer_is_400(
    user_client: APIClient, max_devices: int
) -> None:
    # given
    term = {"scope": "inventory", "attribute": "a", "type": "$eq", "value": "1"}
    response = _json(user_client, "POST", FILTERS, {"name": "f", "terms": [term]})
    assert response.status_code == 201, response.content
    factories.artifact("release-1", ["probe-device"])
    before = table_fingerprint()

    # when
    response = _json(
        user_client,
        "POST",
        "/api/management/v2/deployments/deployments",
        {
            "name": "d",
            "artifact_name": "release-1",
            "filter_id": response.json()["id"],
            "max_devices": max_devices,
        },
    )

    # then
    assert_refused(response)
    assert table_fingerprint() == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "d", "artifact_name": "x" * 4097, "devices": ["a"]},
        {"name": "d", "artifact_name": NUL, "devices": ["a"]},
        {"name": NUL, "artifact_name": "r", "devices": ["a"]},
        {"name": "d", "artifact_name": "r", "phases": [{"batch_size": 2**31}]},
        {"name": "d", "artifact_name": "r", "retries": 2**63},
    ],
)
def test_deployment_with_bad_fields_is_400(
    user_client: APIClient, body: dict[str, Any]
) -> None:
    before = table_fingerprint()
    assert_refused(_json(user_client, "POST", DEPLOYMENTS, body))
    assert table_fingerprint() == before


# ------------------------------------------------------------------ every JSON endpoint

LOGOUT = "/api/management/v1/useradm/auth/logout"


def _json_endpoint_calls() -> list[tuple[str, str]]:
    calls = []
    for endpoint in api_endpoints():
        values = {
            name: "00000000-0000-4000-8000-000000000000"
            for _, name in endpoint.parameters
        }
        path = endpoint.path(values)
        if path == LOGOUT:
            continue  # it revokes the very token the calls that follow it use
        for method in endpoint.json_methods:
            calls.append((method.upper(), path))
    return calls


def test_every_json_endpoint_is_enumerated() -> None:
    calls = _json_endpoint_calls()
    assert (
        "PUT",
        f"{DEVICE_DEPLOYMENTS}/00000000-0000-4000-8000-000000000000/log",
    ) in calls
    assert ("POST", FILTERS) in calls
    assert len(calls) >= 25


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50 + "1" + "}" * 50,
        "[NaN]",
        '{"a": 1e400}',
    ],
    ids=["nested-100000", "nested-50", "nan", "infinite"],
)
def test_every_json_endpoint_refuses_pathological_json(
    user_client: APIClient, device_client: APIClient, body: str
) -> None:
    before = table_fingerprint()
    not_refused = {}
    for method, path in _json_endpoint_calls():
        client = device_client if path.startswith("/api/devices/") else user_client
        status = _json(client, method, path, body).status_code
        if status != 400:
            # only views that never read a body (login, ping, most DELETEs) may answer otherwise,
            # and then exactly as they answer without one
            without_body = client.generic(method, path).status_code
            not_refused[method, path] = (status, without_body)
    assert {
        call: codes for call, codes in not_refused.items() if codes[0] != codes[1]
    } == {}
    assert all(codes[0] < 500 for codes in not_refused.values())
    assert table_fingerprint() == before


def test_body_over_the_limit_is_413(
    user_client: APIClient, device_client: APIClient, settings: Any
) -> None:
    settings.FLOTILLA_MAX_JSON_BODY = 1000
    body = json.dumps({"name": "f", "terms": [], "pad": "x" * 1000})
    assert_refused(_json(user_client, "POST", FILTERS, body), status=413)
    assert_refused(_json(device_client, "PATCH", DEVICE_ATTRIBUTES, body), status=413)
    assert table_fingerprint()["devices_app_devicefilter"][0] == 0


def test_a_multipart_body_is_exempt_from_the_limit_only_on_upload_paths(
    settings: Any,
) -> None:
    # given: a multipart body over the small limit
    settings.FLOTILLA_MAX_JSON_BODY = 1000
    client = _client()
    form = {"username": "x" * 2000, "password": "y"}

    # when: it goes to the admin login (anyone may post there) and to the upload path
    login = client.post("/admin/login/", form)
    upload = client.post(ARTIFACTS, form)

    # then: the login is refused before its body is read; the upload path reads it (and, without
    # a token, answers 401)
    assert_refused(login, status=413)
    assert upload.status_code == 401


def test_nul_escape_in_quoted_path_segment_is_400(user_client: APIClient) -> None:
    assert_refused(user_client.delete(f"{INVENTORY}/groups/{quote(NUL)}"))
