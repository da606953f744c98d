"""Searches of the management API through the real server: devauth device search, running a saved
filter, and the free-text ``text`` of the inventory search."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from devices_app.models import Device, DeviceFilter
from devices_app.services import devauth
from tests import factories
from tests.device_keys import make_key
from tests.e2e.conftest import ManagementAPI

pytestmark = pytest.mark.django_db(transaction=True)

DEVAUTH_SEARCH = "/api/management/v2/devauth/devices/search"
FILTERS = "/api/management/v2/inventory/filters"
SEARCH = f"{FILTERS}/search"


def ids_of(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


def set_inventory(device: Device, **attributes: Any) -> None:
    Device.objects.filter(pk=device.pk).update(inventory=attributes)


# --------------------------------------------------------------- POST /devauth/devices/search


@pytest.fixture
def devauth_fleet() -> dict[str, str]:
    accepted = [factories.accepted_device(f"02:00:00:00:5e:0{i}")[0] for i in range(3)]
    preauthorized = devauth.preauthorize_device(
        identity_data={"mac": "02:00:00:00:5e:10"}, pubkey=make_key("p256").public_pem
    )
    return {
        "a0": str(accepted[0].id),
        "a1": str(accepted[1].id),
        "a2": str(accepted[2].id),
        "pre": str(preauthorized.id),
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, ["a0", "a1", "a2", "pre"]),
        ({"status": "preauthorized"}, ["pre"]),
        ({"status": ["accepted", "preauthorized"]}, ["a0", "a1", "a2", "pre"]),
        ({"status": []}, ["a0", "a1", "a2", "pre"]),
        ({"id": "a1"}, ["a1"]),
        ({"id": ["a2", "pre", "a0"]}, ["a0", "a2", "pre"]),
        ({"id": ["a2", "pre"], "status": "accepted"}, ["a2"]),
        ({"id": ["not-a-device-id"]}, []),
        ({"status": "rejected"}, []),
    ],
)
def test_devauth_search_filters_by_status_and_id(
    body: dict[str, Any],
    expected: list[str],
    devauth_fleet: dict[str, str],
    live_management_api: ManagementAPI,
) -> None:
    def resolved(value: Any) -> Any:
        if isinstance(value, list):
            return [devauth_fleet.get(item, item) for item in value]
        return devauth_fleet.get(value, value)

    response = live_management_api.post(
        DEVAUTH_SEARCH,
        json={
            key: resolved(value) if key == "id" else value
            for key, value in body.items()
        },
    )

    assert ids_of(response) == [devauth_fleet[name] for name in expected]
    device = response.json()[0] if expected else None
    if device is not None:
        assert set(device) == {
            "id",
            "identity_data",
            "status",
            "decommissioning",
            "created_ts",
            "updated_ts",
            "check_in_time",
            "auth_sets",
        }


def test_devauth_search_takes_a_form_body_and_pages(
    devauth_fleet: dict[str, str], live_management_api: ManagementAPI
) -> None:
    response = live_management_api.post(
        f"{DEVAUTH_SEARCH}?per_page=2&page=2",
        data=[("status", "accepted"), ("status", "preauthorized")],
    )

    assert ids_of(response) == [devauth_fleet["a2"], devauth_fleet["pre"]]
    assert 'rel="prev"' in response.headers["Link"]
    assert 'rel="next"' not in response.headers["Link"]


@pytest.mark.parametrize(
    "body",
    [
        {"status": "bogus"},
        {"status": ["accepted", 7]},
        {"status": {"a": 1}},
        {"id": [1]},
        ["accepted"],
    ],
)
def test_bad_devauth_search_is_400(
    body: Any, devauth_fleet: dict[str, str], live_management_api: ManagementAPI
) -> None:
    response = live_management_api.post(DEVAUTH_SEARCH, json=body)

    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error", "request_id"}


def test_devauth_search_without_a_body_is_400_and_an_empty_object_lists_all(
    devauth_fleet: dict[str, str], live_management_api: ManagementAPI
) -> None:
    # As Mender's code: no body at all is malformed, `{}` is a search without a filter.
    without_body = live_management_api.post(DEVAUTH_SEARCH)
    empty_filter = live_management_api.post(DEVAUTH_SEARCH, json={})

    assert without_body.status_code == 400, without_body.text
    assert set(without_body.json()) == {"error", "request_id"}
    assert empty_filter.status_code == 200, empty_filter.text
    assert len(empty_filter.json()) == len(
        live_management_api.get("/api/management/v2/devauth/devices").json()
    )


def test_devauth_search_bad_paging_is_400(live_management_api: ManagementAPI) -> None:
    response = live_management_api.post(f"{DEVAUTH_SEARCH}?per_page=0", json={})

    assert response.status_code == 400, response.text


# --------------------------------------------------------------- GET /filters/{id}/search


def test_saved_filter_search_runs_the_filter_now(
    live_management_api: ManagementAPI,
) -> None:
    # given: three rpi devices, one x86, and a saved filter the worker has not evaluated yet
    devices = [device for device, _ in factories.bulk_accepted_devices(4, prefix="sf")]
    for device in devices[:3]:
        set_inventory(device, device_type="rpi")
    set_inventory(devices[3], device_type="x86")
    saved = DeviceFilter.objects.create(
        name="rpi",
        terms=[
            {
                "scope": "inventory",
                "attribute": "device_type",
                "type": "$eq",
                "value": "rpi",
            }
        ],
    )

    # when
    first = live_management_api.get(
        f"{FILTERS}/{saved.id}/search", params={"per_page": 2}
    )
    second = live_management_api.get(
        f"{FILTERS}/{saved.id}/search", params={"per_page": 2, "page": 2}
    )

    # then
    assert ids_of(first) + ids_of(second) == [str(d.id) for d in devices[:3]]
    assert first.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in first.headers["Link"]
    item = first.json()[0]
    assert set(item) == {"id", "attributes", "updated_ts"}
    assert {"name": "device_type", "scope": "inventory", "value": "rpi"} in item[
        "attributes"
    ]


def test_saved_filter_search_of_an_unknown_filter_is_404(
    live_management_api: ManagementAPI,
) -> None:
    response = live_management_api.get(
        f"{FILTERS}/00000000-0000-4000-8000-000000000000/search"
    )

    assert response.status_code == 404, response.text
    assert response.json()["error"] == "filter not found"


# --------------------------------------------------------------- POST /filters/search "text"


@pytest.fixture
def text_fleet() -> dict[str, Device]:
    devices = [device for device, _ in factories.bulk_accepted_devices(4, prefix="tx")]
    names = ["kitchen", "garage", "office", "attic"]
    fleet = dict(zip(names, devices, strict=True))
    set_inventory(fleet["kitchen"], hostname="Kitchen-Pi", cpus=4)
    set_inventory(fleet["garage"], hostname="garage-gw", note="near the kitchen door")
    set_inventory(fleet["office"], hostname="office-1", ports=["kitchen"])
    Device.objects.filter(pk=fleet["attic"].pk).update(
        tags={"location": "attic"}, group_name="upstairs"
    )
    return fleet


def search_text(api: ManagementAPI, text: str, **extra: Any) -> list[str]:
    return ids_of(api.post(SEARCH, json={"text": text, **extra}))


def test_text_search_matches_whole_words_of_string_attributes(
    text_fleet: dict[str, Device], live_management_api: ManagementAPI
) -> None:
    api = live_management_api
    kitchen, garage, attic = (
        str(text_fleet[n].id) for n in ("kitchen", "garage", "attic")
    )

    # any case, any word of a value; list values and numbers are not indexed
    assert sorted(search_text(api, "KITCHEN")) == sorted([kitchen, garage])
    assert search_text(api, "gw") == [garage]
    assert search_text(api, "kitch") == []
    assert search_text(api, "4") == []
    # tags, the group and the identity are indexed too
    assert search_text(api, "attic") == [attic]
    assert search_text(api, "upstairs") == [attic]
    assert search_text(api, "000003") == [attic]  # identity {"mac": "tx-000003"}
    # any keyword matches; punctuation only separates words
    assert sorted(search_text(api, "gw, attic!")) == sorted([garage, attic])
    assert search_text(api, "!!!") == []


def test_text_search_matches_a_device_by_part_of_its_id(
    text_fleet: dict[str, Device], live_management_api: ManagementAPI
) -> None:
    office = text_fleet["office"]
    first_group = str(office.id).split("-")[0]

    assert str(office.id) in search_text(live_management_api, first_group)
    assert search_text(live_management_api, str(office.id)) == [str(office.id)]


def test_text_search_ranks_better_matches_first_and_combines_with_filters(
    text_fleet: dict[str, Device], live_management_api: ManagementAPI
) -> None:
    api = live_management_api
    kitchen, garage = str(text_fleet["kitchen"].id), str(text_fleet["garage"].id)
    # "kitchen" and "pi" both in the first; only "kitchen" in the second
    assert search_text(api, "kitchen pi") == [kitchen, garage]
    only_garage = [
        {
            "scope": "inventory",
            "attribute": "hostname",
            "type": "$eq",
            "value": "garage-gw",
        }
    ]
    assert search_text(api, "kitchen", filters=only_garage) == [garage]
    response = api.post(SEARCH, json={"text": "kitchen", "per_page": 1})
    assert response.headers["X-Total-Count"] == "2"
    assert len(response.json()) == 1


def test_text_search_of_many_words_is_one_query_and_oversize_text_is_400(
    text_fleet: dict[str, Device], live_management_api: ManagementAPI
) -> None:
    words = " ".join(f"w{i}" for i in range(500))

    assert search_text(live_management_api, words) == []
    too_long = live_management_api.post(SEARCH, json={"text": "x" * 4097})
    assert too_long.status_code == 400, too_long.text
