"""Every paged management endpoint, walked to the end through its Link headers on the real server.

Each case asks for ``per_page=1`` with its own filter parameters (repeated where the endpoint
takes a parameter more than once) and follows ``rel="next"`` until there is none. Every link
must be an absolute path carrying every value of every parameter, with exactly one ``rel``; the
walk must see every item once and as many as ``X-Total-Count`` says (where it is sent).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from deployments_app.models import Release
from deployments_app.services.creation import create_deployment
from devices_app.services.filters import create_device_filter
from devices_app.services.groups import add_devices_to_group
from tests import factories
from tests.e2e.conftest import ManagementAPI

pytestmark = pytest.mark.django_db(transaction=True)

ITEMS = 3
_LINK = re.compile(r"<(?P<target>[^>]*)>(?P<params>(?:\s*;\s*[^,;]+)*)")


@dataclass(frozen=True)
class World:
    device_ids: list[str]
    filter_id: str
    deployment_id: str


@dataclass(frozen=True)
class Case:
    path: Callable[[World], str]
    params: Callable[[World], list[tuple[str, str]]] = lambda world: []
    item_key: Callable[[Any], Any] = lambda item: item["id"]
    method: str = "GET"
    body: Callable[[World], dict[str, Any]] | None = None
    total_count: bool = True


DEVAUTH = "/api/management/v2/devauth/devices"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"

CASES: dict[str, Case] = {
    "devauth devices": Case(
        path=lambda w: DEVAUTH,
        params=lambda w: (
            [("status", "accepted"), ("status", "pending")]
            + [("id", device_id) for device_id in w.device_ids]
        ),
    ),
    "devauth devices search": Case(
        path=lambda w: f"{DEVAUTH}/search",
        method="POST",
        body=lambda w: {"status": ["accepted", "pending"], "id": w.device_ids},
    ),
    "inventory v1 devices": Case(
        path=lambda w: "/api/management/v1/inventory/devices",
        params=lambda w: [("group", "paged"), ("sort", "device_type:asc")],
    ),
    "inventory v1 group devices": Case(
        path=lambda w: "/api/management/v1/inventory/groups/paged/devices",
        item_key=lambda item: item,
    ),
    "inventory v2 saved filters": Case(
        path=lambda w: "/api/management/v2/inventory/filters"
    ),
    "inventory v2 saved filter search": Case(
        path=lambda w: f"/api/management/v2/inventory/filters/{w.filter_id}/search"
    ),
    "artifacts list": Case(
        path=lambda w: "/api/management/v1/deployments/artifacts/list",
        params=lambda w: [("device_type", "paged-type"), ("sort", "name:asc")],
    ),
    "releases v1 list": Case(
        path=lambda w: f"{DEPLOYMENTS}/releases/list",
        params=lambda w: [("tag", "blue"), ("tag", "green")],
        item_key=lambda item: item["Name"],
    ),
    "releases v2": Case(
        path=lambda w: "/api/management/v2/deployments/deployments/releases",
        params=lambda w: [("tag", "blue"), ("tag", "green")],
        item_key=lambda item: item["name"],
    ),
    "deployments": Case(
        path=lambda w: DEPLOYMENTS,
        params=lambda w: [("search", "paged"), ("sort", "asc"), ("type", "software")],
    ),
    "deployment devices list": Case(
        path=lambda w: f"{DEPLOYMENTS}/{w.deployment_id}/devices/list"
    ),
    "device deployment history": Case(
        path=lambda w: f"{DEPLOYMENTS}/devices/{w.device_ids[0]}",
        item_key=lambda item: item["deployment"]["id"],
    ),
}


@pytest.fixture
def world(live_management_api: ManagementAPI) -> World:
    """Three of everything each endpoint lists."""
    devices = [
        device for device, _ in factories.bulk_accepted_devices(ITEMS, prefix="paged")
    ]
    device_ids = [str(device.id) for device in devices]
    add_devices_to_group(
        group_name="paged", device_ids=[device.id for device in devices]
    )
    factories.bulk_accepted_devices(2, prefix="other")  # not in the group
    for number, tag in enumerate(("blue", "green", "blue"), start=1):
        factories.artifact(f"paged-{number}", ["paged-type"])
        Release.objects.filter(name=f"paged-{number}").update(tags=[tag])
    deployments = [
        create_deployment(
            name=f"paged-{number}", artifact_name="paged-1", devices=device_ids
        )
        for number in range(ITEMS)
    ]
    filter_ids = [
        str(
            create_device_filter(
                name=f"paged-{value}",
                terms=[
                    {
                        "scope": "system",
                        "attribute": "group",
                        "type": "$eq",
                        "value": value,
                    }
                ],
            ).id
        )
        for value in ("paged", "elsewhere", "nowhere")
    ]
    return World(
        device_ids=device_ids,
        filter_id=filter_ids[0],
        deployment_id=str(deployments[0].pk),
    )


def parse_links(header: str) -> dict[str, str]:
    """``{rel: target}``; fails on a link without exactly one rel or a rel given twice."""
    links: dict[str, str] = {}
    for match in _LINK.finditer(header):
        rels = re.findall(r'rel="([^"]*)"', match["params"])
        assert len(rels) == 1, match.group(0)
        assert " " not in rels[0], match.group(0)
        assert rels[0] not in links, header
        links[rels[0]] = match["target"]
    return links


@pytest.mark.parametrize("name", list(CASES))
def test_links_walk_every_paged_endpoint_to_the_end(
    name: str, world: World, live_management_api: ManagementAPI
) -> None:
    case = CASES[name]
    path = case.path(world)
    params = case.params(world)

    def fetch(target: str) -> requests.Response:
        body = case.body(world) if case.body else None
        response = live_management_api.request(case.method, target, json=body)
        assert response.status_code == 200, (target, response.text)
        return response

    # when: the first page, then every next link
    query = "&".join(f"{k}={v}" for k, v in [*params, ("per_page", "1")])
    response = fetch(f"{path}?{query}")
    pages = [response]
    while "next" in (links := parse_links(response.headers["Link"])):
        assert len(pages) <= 10, "the links never end"
        response = fetch(links["next"])
        pages.append(response)

    # then: one item per page, each once, as many as the total
    keys = [case.item_key(item) for page in pages for item in page.json()]
    assert [len(page.json()) for page in pages] == [1] * ITEMS
    assert len(set(keys)) == ITEMS
    for page in pages:
        if case.total_count:
            assert page.headers["X-Total-Count"] == str(ITEMS)
        for rel, target in parse_links(page.headers["Link"]).items():
            parts = urlsplit(target)
            assert parts.path == path, (rel, target)
            pairs = parse_qsl(parts.query)
            assert [p for p in pairs if p[0] not in ("page", "per_page")] == params
            assert ("per_page", "1") in pairs
    first = parse_links(pages[-1].headers["Link"])["first"]
    assert ("page", "1") in parse_qsl(urlsplit(first).query)
    assert "prev" not in parse_links(pages[0].headers["Link"])
    assert "prev" in parse_links(pages[-1].headers["Link"])


def test_a_search_in_the_body_sends_the_total_without_links(
    world: World, live_management_api: ManagementAPI
) -> None:
    response = live_management_api.post(
        "/api/management/v2/inventory/filters/search",
        json={
            "per_page": 1,
            "filters": [
                {
                    "scope": "system",
                    "attribute": "group",
                    "type": "$eq",
                    "value": "paged",
                }
            ],
        },
    )

    assert response.status_code == 200, response.text
    assert response.headers["X-Total-Count"] == str(ITEMS)
    assert "Link" not in response.headers
    assert len(response.json()) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/management/v1/inventory/devices",
        "/api/management/v1/inventory/groups/paged/devices",
        DEVAUTH,
        DEPLOYMENTS,
    ],
)
def test_default_per_page_is_20(path: str, live_management_api: ManagementAPI) -> None:
    # given: 25 accepted devices in a group, in 25 deployments' history
    devices = factories.bulk_accepted_devices(25, prefix="many")
    add_devices_to_group(
        group_name="paged", device_ids=[device.id for device, _ in devices]
    )
    factories.artifact("many", ["paged-type"])
    for number in range(25):
        create_deployment(
            name=f"many-{number}", artifact_name="many", devices=[str(devices[0][0].id)]
        )

    # when
    response = live_management_api.get(path)

    # then
    assert response.status_code == 200, response.text
    assert len(response.json()) == 20
    assert "per_page=20" in parse_links(response.headers["Link"])["next"]
