"""Device inventory upload (PUT/PATCH) and the management inventory API (list, detail, tags, search)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from devices_app.models import Device, DeviceFilter, FilterMembership
from tests.device_keys import make_key
from tests.devices_app.memberships import device_matches_filter
from tests.devices_app.test_devauth_api import authenticated_device
from tests.devices_app.test_filtering import make_device

pytestmark = pytest.mark.django_db

INVENTORY_URL = "/api/devices/v1/inventory/device/attributes"
DEVICES_URL = "/api/management/v1/inventory/devices"
SEARCH_URL = "/api/management/v2/inventory/filters/search"
ATTRIBUTES_URL = "/api/management/v2/inventory/filters/attributes"

# What client 3.4 sends (mender-client-wire.md §3.3), including a list-valued attribute.
CLIENT_INVENTORY: list[dict[str, Any]] = [
    {"name": "probe_list", "value": ["a", "b"]},
    {"name": "device_type", "value": "probe-device"},
    {"name": "artifact_name", "value": "original"},
    {"name": "mender_client_version", "value": "3.4.0+ds1-5+b1"},
    {"name": "os", "value": "Debian GNU/Linux 12 (bookworm)"},
    {"name": "hostname", "value": "probe-client-1"},
]
CLIENT_INVENTORY_DICT = {item["name"]: item["value"] for item in CLIENT_INVENTORY}


@pytest.fixture
def device_client(
    api_client: APIClient, management_client: APIClient
) -> tuple[APIClient, Device]:
    """An accepted device holding a real device token (through the auth_requests API)."""
    mac = "02:00:00:00:1a:01"
    token = authenticated_device(api_client, management_client, make_key("p256"), mac)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client, Device.objects.get(identity_data={"mac": mac})


def send(client: APIClient, method: str, body: Any, url: str = INVENTORY_URL) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    # Raw bytes on purpose (Django's generic() takes them; the stub says str).
    return client.generic(method, url, raw, content_type="application/json")  # type: ignore[arg-type]


def xmin_of(device: Device) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text FROM devices_app_device WHERE id = %s", [device.pk]
        )
        return cursor.fetchone()[0]


# --- device-facing PUT / PATCH ---------------------------------------------------------------


def test_put_stores_inventory_and_answers_exactly_200_with_empty_body(
    device_client: tuple[APIClient, Device],
) -> None:
    client, device = device_client

    response = send(client, "PUT", CLIENT_INVENTORY)

    assert response.status_code == 200
    assert response.content == b""
    device.refresh_from_db()
    assert device.inventory == CLIENT_INVENTORY_DICT


def test_put_replaces_and_patch_merges(device_client: tuple[APIClient, Device]) -> None:
    client, device = device_client
    assert send(client, "PUT", CLIENT_INVENTORY).status_code == 200

    # when: PUT without most attributes -> they are removed
    response = send(client, "PUT", [{"name": "device_type", "value": "other"}])

    assert response.status_code == 200
    device.refresh_from_db()
    assert device.inventory == {"device_type": "other"}

    # when: PATCH upserts, keeps the rest
    response = send(
        client,
        "PATCH",
        [
            {"name": "artifact_name", "value": "r2"},
            {"name": "device_type", "value": "t3"},
        ],
    )

    assert response.status_code == 200
    assert response.content == b""
    device.refresh_from_db()
    assert device.inventory == {"device_type": "t3", "artifact_name": "r2"}


def test_numbers_lists_and_descriptions_are_accepted(
    device_client: tuple[APIClient, Device],
) -> None:
    client, device = device_client
    body = [
        {"name": "cpus", "value": 4},
        {"name": "load", "value": 0.25},
        {"name": "ports", "value": [22, 80]},
        {"name": "ips", "value": ["10.0.0.2/24"], "description": "addresses"},
        {"name": "empty", "value": []},
        {"name": "scoped", "value": "x", "scope": "inventory"},
    ]

    assert send(client, "PUT", body).status_code == 200

    device.refresh_from_db()
    assert device.inventory == {
        "cpus": 4,
        "load": 0.25,
        "ports": [22, 80],
        "ips": ["10.0.0.2/24"],
        "empty": [],
        "scoped": "x",
    }


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_identical_inventory_in_any_order_costs_no_write(
    device_client: tuple[APIClient, Device], method: str
) -> None:
    # given: the inventory is stored
    client, device = device_client
    assert send(client, "PUT", CLIENT_INVENTORY).status_code == 200
    device.refresh_from_db()
    before_xmin, before_updated = xmin_of(device), device.updated_ts

    # when: the client sends the same set again, in another order (Go map order is random)
    shuffled = CLIENT_INVENTORY[:]
    random.Random(7).shuffle(shuffled)
    with CaptureQueriesContext(connection) as queries:
        response = send(client, method, shuffled)

    # then: 200, and only reads: the device token check and the inventory read
    assert response.status_code == 200
    statements = [
        q["sql"].lstrip().split()[0].upper() for q in queries.captured_queries
    ]
    assert statements == ["SELECT", "SELECT"]
    assert not any("advisory" in q["sql"] for q in queries.captured_queries)
    device.refresh_from_db()
    assert xmin_of(device) == before_xmin
    assert device.updated_ts == before_updated


def test_changed_inventory_is_written_once(
    device_client: tuple[APIClient, Device],
) -> None:
    client, device = device_client
    assert send(client, "PUT", CLIENT_INVENTORY).status_code == 200
    device.refresh_from_db()
    before_xmin, before_updated = xmin_of(device), device.updated_ts
    changed = [*CLIENT_INVENTORY[:-1], {"name": "hostname", "value": "renamed"}]

    with CaptureQueriesContext(connection) as queries:
        assert send(client, "PUT", changed).status_code == 200

    updates = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")
    ]
    assert len(updates) == 1
    device.refresh_from_db()
    assert xmin_of(device) != before_xmin
    assert device.updated_ts > before_updated
    assert device.inventory["hostname"] == "renamed"


def _many(count: int) -> list[dict[str, Any]]:
    return [{"name": f"a{i}", "value": "v"} for i in range(count)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "a", "value": "b"}, "expected a list"),
        ([], "no attributes"),
        (["a"], "must be an object"),
        ([{"value": "x"}], "name must be"),
        ([{"name": "", "value": "x"}], "name must be"),
        ([{"name": "n" * 1025, "value": "x"}], "name must be"),
        ([{"name": "a"}], "value is required"),
        ([{"name": "a", "value": None}], "value must be"),
        ([{"name": "a", "value": True}], "value must be"),
        ([{"name": "a", "value": {"k": "v"}}], "value must be"),
        ([{"name": "a", "value": ["x", 1]}], "only strings or only numbers"),
        ([{"name": "a", "value": [["x"]]}], "only strings or only numbers"),
        ([{"name": "a", "value": "x" * 4097}], "longer than 4096"),
        ([{"name": "a", "value": ["x" * 4000] * 5}], "larger than 16384 bytes"),
        ([{"name": "a", "value": "x\u0000"}], "NUL"),
        ([{"name": "a", "value": "x", "scope": "tags"}], "only the 'inventory' scope"),
        ([{"name": "a", "value": "x"}, {"name": "a", "value": "y"}], "more than once"),
        (_many(101), "at most 100"),
        (b"[{not json", "JSON parse error"),
    ],
)
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_bad_inventory_is_400_json_and_nothing_is_stored(
    device_client: tuple[APIClient, Device], method: str, body: Any, message: str
) -> None:
    # given
    client, device = device_client
    assert send(client, "PUT", CLIENT_INVENTORY).status_code == 200
    device.refresh_from_db()
    before_xmin = xmin_of(device)

    # when
    response = send(client, method, body)

    # then
    assert response.status_code == 400
    assert set(response.json()) == {"error", "request_id"}
    assert message in response.json()["error"]
    device.refresh_from_db()
    assert device.inventory == CLIENT_INVENTORY_DICT
    assert xmin_of(device) == before_xmin


def test_patch_beyond_100_attributes_in_total_is_rejected(
    device_client: tuple[APIClient, Device],
) -> None:
    client, device = device_client
    assert send(client, "PUT", _many(100)).status_code == 200

    response = send(client, "PATCH", [{"name": "one-more", "value": "x"}])

    assert response.status_code == 400
    assert "at most 100" in response.json()["error"]
    device.refresh_from_db()
    assert len(device.inventory) == 100
    assert "one-more" not in device.inventory


def test_inventory_needs_a_device_token(
    api_client: APIClient, management_client: APIClient
) -> None:
    device = make_device()

    anonymous = send(api_client, "PUT", CLIENT_INVENTORY)
    as_user = send(management_client, "PUT", CLIENT_INVENTORY)

    assert anonymous.status_code == 401
    assert as_user.status_code == 401
    device.refresh_from_db()
    assert device.inventory == {}


def test_changed_inventory_updates_filter_membership_before_the_response(
    device_client: tuple[APIClient, Device],
) -> None:
    # given: a saved filter (its evaluation task is not needed for this device path)
    client, device = device_client
    saved = DeviceFilter.objects.create(
        name="probes",
        terms=[
            {
                "scope": "inventory",
                "attribute": "device_type",
                "type": "$eq",
                "value": "probe-device",
            }
        ],
    )

    # when / then: joins as soon as the inventory matches ...
    assert send(client, "PUT", CLIENT_INVENTORY).status_code == 200
    assert device_matches_filter(device_id=device.pk, filter_id=saved.pk) is True

    # ... and leaves as soon as it no longer does
    assert (
        send(client, "PATCH", [{"name": "device_type", "value": "other"}]).status_code
        == 200
    )
    assert device_matches_filter(device_id=device.pk, filter_id=saved.pk) is False
    assert FilterMembership.objects.count() == 0


# --- management v1 -------------------------------------------------------------------------------


def attributes_of(body: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(a["scope"], a["name"]): a["value"] for a in body["attributes"]}


def test_device_detail_shows_every_scope(management_client: APIClient) -> None:
    device = make_device(
        identity={"mac": "02:aa"},
        inventory={"device_type": "rpi4", "ports": [22]},
        tags={"site": "lab"},
        group_name="g1",
    )

    response = management_client.get(f"{DEVICES_URL}/{device.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(device.id)
    updated = device.updated_ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert body["updated_ts"] == updated
    assert attributes_of(body) == {
        ("identity", "mac"): "02:aa",
        ("identity", "status"): "accepted",
        ("inventory", "device_type"): "rpi4",
        ("inventory", "ports"): [22],
        ("system", "group"): "g1",
        ("system", "status"): "accepted",
        ("system", "created_ts"): device.created_ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        ("system", "updated_ts"): updated,
        ("tags", "site"): "lab",
    }


def test_unknown_device_is_404(management_client: APIClient) -> None:
    response = management_client.get(
        f"{DEVICES_URL}/8f9e3c4e-53c1-4b0e-9f0a-7f2a1c2b3d4e"
    )
    assert response.status_code == 404
    assert set(response.json()) == {"error", "request_id"}


def test_list_devices_filters_sorts_and_pages(management_client: APIClient) -> None:
    # given
    devices = [
        make_device(inventory={"device_type": "rpi", "rank": rank})
        for rank in (3, 1, 2)
    ]
    make_device(inventory={"device_type": "x86"})
    make_device(status="decommissioned", inventory={"device_type": "rpi"})

    # when
    response = management_client.get(
        DEVICES_URL, {"device_type": "rpi", "sort": "rank:desc", "per_page": "2"}
    )

    # then
    assert response.status_code == 200
    assert response["X-Total-Count"] == "3"
    assert [d["id"] for d in response.json()] == [
        str(devices[0].id),
        str(devices[2].id),
    ]
    assert 'rel="next"' in response["Link"]
    page_2 = management_client.get(
        DEVICES_URL,
        {"device_type": "rpi", "sort": "rank:desc", "per_page": "2", "page": "2"},
    )
    assert [d["id"] for d in page_2.json()] == [str(devices[1].id)]


def test_list_devices_by_group(management_client: APIClient) -> None:
    grouped = make_device(group_name="g1")
    ungrouped = make_device()

    in_group = management_client.get(DEVICES_URL, {"group": "g1"})
    without = management_client.get(DEVICES_URL, {"has_group": "false"})
    bad = management_client.get(DEVICES_URL, {"has_group": "maybe"})

    assert [d["id"] for d in in_group.json()] == [str(grouped.id)]
    assert [d["id"] for d in without.json()] == [str(ungrouped.id)]
    assert bad.status_code == 400


def test_list_devices_rejects_bad_paging(management_client: APIClient) -> None:
    response = management_client.get(DEVICES_URL, {"per_page": 501})
    assert response.status_code == 400
    assert response.json()["error"] == "Param per_page is out of bounds"


def test_tags_put_patch_with_etag(management_client: APIClient) -> None:
    # given
    device = make_device()
    url = f"{DEVICES_URL}/{device.id}/tags"

    # when: set tags, read the ETag
    put = management_client.put(
        url,
        [{"name": "site", "value": "lab"}, {"name": "owner", "value": "qa"}],
        format="json",
    )
    etag = management_client.get(f"{DEVICES_URL}/{device.id}")["ETag"]
    patch = management_client.patch(
        url, [{"name": "site", "value": "hq"}], format="json", HTTP_IF_MATCH=etag
    )
    stale = management_client.patch(
        url, [{"name": "site", "value": "x"}], format="json", HTTP_IF_MATCH=etag
    )

    # then
    assert put.status_code == 200
    assert patch.status_code == 200
    assert stale.status_code == 412
    assert set(stale.json()) == {"error", "request_id"}
    device.refresh_from_db()
    assert device.tags == {"site": "hq", "owner": "qa"}
    assert str(device.tags_etag) != etag


@pytest.mark.parametrize(
    "body",
    [
        [{"name": "n", "value": 1}],
        [{"name": "n", "value": ["a"]}],
        [{"name": "", "value": "a"}],
        "nope",
    ],
)
def test_bad_tags_are_400_and_nothing_is_stored(
    management_client: APIClient, body: Any
) -> None:
    device = make_device(tags={"keep": "me"})

    response = management_client.put(
        f"{DEVICES_URL}/{device.id}/tags", body, format="json"
    )

    assert response.status_code == 400
    device.refresh_from_db()
    assert device.tags == {"keep": "me"}


def test_delete_device_inventory_clears_scopes_and_group(
    management_client: APIClient,
) -> None:
    device = make_device(inventory={"a": "b"}, tags={"c": "d"})
    management_client.put(
        f"{DEVICES_URL}/{device.id}/group", {"group": "g1"}, format="json"
    )

    response = management_client.delete(f"{DEVICES_URL}/{device.id}")

    assert response.status_code == 204
    device.refresh_from_db()
    assert (device.inventory, device.tags, device.group_name) == ({}, {}, None)
    assert device.group_memberships.get().removed_ts is not None


# --- management v2: search and attribute list ----------------------------------------------------


def test_search_with_filters_sort_paging_and_projection(
    management_client: APIClient,
) -> None:
    # given
    a = make_device(inventory={"device_type": "rpi", "ver": "1.2"})
    b = make_device(inventory={"device_type": "rpi", "ver": "1.10"})
    make_device(inventory={"device_type": "x86", "ver": "9"})

    # when
    response = management_client.post(
        SEARCH_URL,
        {
            "page": 1,
            "per_page": 10,
            "filters": [
                {
                    "scope": "inventory",
                    "attribute": "device_type",
                    "type": "$eq",
                    "value": "rpi",
                }
            ],
            "sort": [{"scope": "inventory", "attribute": "ver", "order": "asc"}],
            "attributes": [{"scope": "inventory", "attribute": "ver"}],
        },
        format="json",
    )

    # then: lexicographic order "1.10" < "1.2"; only the requested attribute
    assert response.status_code == 200
    assert response["X-Total-Count"] == "2"
    assert response.json() == [
        {
            "id": str(b.id),
            "attributes": [{"name": "ver", "scope": "inventory", "value": "1.10"}],
            "updated_ts": b.updated_ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
        {
            "id": str(a.id),
            "attributes": [{"name": "ver", "scope": "inventory", "value": "1.2"}],
            "updated_ts": a.updated_ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    ]


@pytest.mark.parametrize(
    "body",
    [
        {
            "filters": [
                {"scope": "inventory", "attribute": "a", "type": "$near", "value": 1}
            ]
        },
        {
            "filters": [
                {"scope": "nowhere", "attribute": "a", "type": "$eq", "value": 1}
            ]
        },
        {"filters": "x"},
        {
            "filters": [
                {
                    "scope": "inventory",
                    "attribute": "a",
                    "type": "$regex",
                    "value": "(?P<x>a)",
                }
            ]
        },
        {"per_page": 501},
        {"sort": [{"scope": "system", "attribute": "nope", "order": "asc"}]},
        {"text": "x" * 4097},
    ],
)
def test_bad_search_is_400_json(
    management_client: APIClient, body: dict[str, Any]
) -> None:
    response = management_client.post(SEARCH_URL, body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"error", "request_id"}


def test_attribute_list_counts_devices(management_client: APIClient) -> None:
    make_device(
        identity={"mac": "1"}, inventory={"device_type": "a", "k": 1}, group_name="g"
    )
    make_device(identity={"mac": "2"}, inventory={"device_type": "b"}, tags={"t": "v"})

    response = management_client.get(ATTRIBUTES_URL)

    assert response.status_code == 200
    assert response.json() == [
        {"name": "mac", "scope": "identity", "count": 2},
        {"name": "device_type", "scope": "inventory", "count": 2},
        {"name": "k", "scope": "inventory", "count": 1},
        {"name": "group", "scope": "system", "count": 1},
        {"name": "t", "scope": "tags", "count": 1},
    ]


def test_management_endpoints_refuse_device_tokens(
    device_client: tuple[APIClient, Device],
) -> None:
    client, _ = device_client
    assert client.get(DEVICES_URL).status_code == 401
