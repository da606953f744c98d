"""The OpenAPI document at /api/schema/ (issue 10 §5): complete, valid, warning-free, and true.

True means: the responses of the main flows, through the real server process, validate against
the document (tests/openapi_contract.py), strictly (no undocumented fields).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate
from rest_framework.views import APIView

from tests.device_keys import make_key, signed_auth_request
from tests.e2e.artifacts import build_module_artifact, mender_artifact_missing
from tests.e2e.conftest import require_e2e
from tests.openapi_contract import OpenApiContract

SCHEMA_URL = "/api/schema/"
AUTH_REQUESTS = "/api/devices/v1/authentication/auth_requests"
DEVICE_ATTRIBUTES = "/api/devices/v1/inventory/device/attributes"
NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"
DEVICE_DEPLOYMENTS = "/api/devices/v1/deployments/device/deployments"
DEVAUTH_DEVICES = "/api/management/v2/devauth/devices"
INVENTORY_DEVICES = "/api/management/v1/inventory/devices"
INVENTORY_SEARCH = "/api/management/v2/inventory/filters/search"
ARTIFACTS = "/api/management/v1/deployments/artifacts"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
# Methods Django and DRF answer on every view by themselves; the document leaves them out.
IMPLICIT_METHODS = {"head", "options", "trace"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document as the server generates it, JSON-shaped."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(json.dumps(generated))


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def api_operations() -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) of every route under /api/ in the URL conf, as OpenAPI spells them.

    A plain Django view (not DRF) counts as GET only: if you add one that answers other
    methods, describe it in the document and teach this function its methods.
    """
    operations = set()
    for route, callback in _routes(get_resolver().url_patterns):
        if not route.startswith("api/"):
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        view_class = getattr(callback, "cls", None)
        if view_class is not None and issubclass(view_class, APIView):
            methods = {
                method.upper()
                for method in view_class.http_method_names
                if method not in IMPLICIT_METHODS and hasattr(view_class, method)
            }
        else:
            methods = {"GET"}
        operations |= {(method, path) for method in methods}
    return operations


def test_every_api_route_and_method_is_in_the_document_and_nothing_else(
    document: dict[str, Any],
) -> None:
    # given
    routes = api_operations()

    # when
    documented = OpenApiContract(document).operations()

    # then
    assert len(routes) > 60
    assert sorted(routes - documented) == []
    assert sorted(documented - routes) == []


def test_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)

    assert document["openapi"].startswith("3.")
    assert set(document["components"]["securitySchemes"]) == {
        "BasicAuth",
        "DeviceToken",
        "UserToken",
    }


def test_generation_is_free_of_warnings_and_errors(tmp_path: Path) -> None:
    # given: the counters are process-wide; start from zero
    GENERATOR_STATS._warn_cache.clear()
    GENERATOR_STATS._error_cache.clear()
    output = tmp_path / "schema.yaml"

    # when: fails (SchemaGenerationError) on any warning, e.g. a view without a declared schema
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(output))

    # then
    assert yaml.safe_load(output.read_text())["info"]["title"] == "Flotilla API"


def test_operations_are_secured_as_the_views_are(document: dict[str, Any]) -> None:
    security = {
        (method.upper(), path): operation.get("security")
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }

    assert security[("GET", DEVAUTH_DEVICES)] == [{"UserToken": []}]
    assert security[("POST", NEXT_V2)] == [{"DeviceToken": []}]
    assert security[("POST", "/api/management/v1/useradm/auth/login")] == [
        {"BasicAuth": []}
    ]
    assert security[("POST", AUTH_REQUESTS)] is None
    assert security[("GET", SCHEMA_URL)] == [{}]
    management = [
        key
        for key, value in security.items()
        if key[1].startswith("/api/management/")
        and key[1] != "/api/management/v1/useradm/auth/login"
        and value != [{"UserToken": []}]
    ]
    assert management == []


@pytest.mark.django_db(transaction=True)
def test_schema_is_served_publicly_as_yaml_and_json(
    live_server_url: str, document: dict[str, Any]
) -> None:
    # when: no token at all, and a bad one
    as_yaml = requests.get(f"{live_server_url}{SCHEMA_URL}", timeout=30)
    as_json = requests.get(
        f"{live_server_url}{SCHEMA_URL}",
        params={"format": "json"},
        headers={"Authorization": "Bearer not-a-token"},
        timeout=30,
    )

    # then: the same document the generator makes
    assert as_yaml.status_code == 200
    assert as_yaml.headers["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(as_yaml.content) == document
    assert as_json.status_code == 200
    assert as_json.headers["Content-Type"].startswith(
        "application/vnd.oai.openapi+json"
    )
    assert as_json.json() == document
    OpenApiContract(document).check(as_json)


# ---------------------------------------------------------------- the main flows


@pytest.fixture
def artifact_file(tmp_path: Path) -> Path:
    require_e2e(mender_artifact_missing())
    return build_module_artifact(
        tmp_path,
        "schema-release-1",
        {"payload.txt": b"schema\n"},
        device_types=("schema-device",),
    )


def _last_segment(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


@pytest.mark.django_db(transaction=True)
def test_main_flows_answer_as_the_document_says(
    live_server_url: str,
    user_token: str,
    document: dict[str, Any],
    artifact_file: Path,
) -> None:
    contract = OpenApiContract(document)
    session = requests.Session()
    management = {"Authorization": f"Bearer {user_token}"}

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return contract.check(
            session.request(method, f"{live_server_url}{path}", **kwargs)
        )

    def expect(status: int) -> Callable[[requests.Response], requests.Response]:
        def check(response: requests.Response) -> requests.Response:
            assert response.status_code == status, response.text
            return response

        return check

    # device authentication: pending, accepted by the operator, then a token
    key = make_key("p256")
    body, signature = signed_auth_request(key, {"mac": "02:00:00:5c:4e:01"})
    auth_headers = {
        "Authorization": "Bearer ",
        "X-MEN-Signature": signature,
        "Content-Type": "application/json",
    }
    expect(401)(call("POST", AUTH_REQUESTS, data=body, headers=auth_headers))
    devices = expect(200)(
        call("GET", DEVAUTH_DEVICES, params={"per_page": 1}, headers=management)
    ).json()
    device_id, auth_set_id = devices[0]["id"], devices[0]["auth_sets"][0]["id"]
    expect(204)(
        call(
            "PUT",
            f"{DEVAUTH_DEVICES}/{device_id}/auth/{auth_set_id}/status",
            json={"status": "accepted"},
            headers=management,
        )
    )
    device_token = expect(200)(
        call("POST", AUTH_REQUESTS, data=body, headers=auth_headers)
    ).text
    device = {"Authorization": f"Bearer {device_token}"}
    expect(200)(call("GET", f"{DEVAUTH_DEVICES}/{device_id}", headers=management))
    expect(200)(
        call(
            "GET",
            f"{DEVAUTH_DEVICES}/count",
            params={"status": "accepted"},
            headers=management,
        )
    )

    # inventory: the device writes, the operator reads
    attributes = [
        {"name": "device_type", "value": "schema-device"},
        {"name": "artifact_name", "value": "schema-release-0"},
    ]
    expect(200)(call("PATCH", DEVICE_ATTRIBUTES, json=attributes, headers=device))
    expect(200)(
        call(
            "PUT",
            DEVICE_ATTRIBUTES,
            json=[*attributes, {"name": "cpus", "value": ["a53", "a72"]}],
            headers=device,
        )
    )
    inventory = expect(200)(
        call("GET", f"{INVENTORY_DEVICES}/{device_id}", headers=management)
    ).json()
    assert {"name": "cpus", "scope": "inventory", "value": ["a53", "a72"]} in (
        inventory["attributes"]
    )
    expect(200)(call("GET", INVENTORY_DEVICES, headers=management))
    found = expect(200)(
        call(
            "POST",
            INVENTORY_SEARCH,
            json={
                "filters": [
                    {
                        "scope": "inventory",
                        "attribute": "device_type",
                        "type": "$eq",
                        "value": "schema-device",
                    }
                ]
            },
            headers=management,
        )
    ).json()
    assert [d["id"] for d in found] == [device_id]

    # artifacts: upload, list, get
    with artifact_file.open("rb") as handle:
        uploaded = expect(201)(
            call(
                "POST",
                ARTIFACTS,
                data={"description": "schema test"},
                files={"artifact": (artifact_file.name, handle)},
                headers=management,
            )
        )
    artifact_id = _last_segment(uploaded.headers["Location"])
    expect(200)(call("GET", ARTIFACTS, headers=management))
    expect(200)(call("GET", f"{ARTIFACTS}/list", headers=management))
    artifact = expect(200)(
        call("GET", f"{ARTIFACTS}/{artifact_id}", headers=management)
    ).json()
    assert artifact["name"] == "schema-release-1"

    # deployments: create, list, get, statistics, devices
    created = expect(201)(
        call(
            "POST",
            DEPLOYMENTS,
            json={
                "name": "schema",
                "artifact_name": "schema-release-1",
                "devices": [device_id],
            },
            headers=management,
        )
    )
    deployment_id = _last_segment(created.headers["Location"])
    expect(200)(call("GET", DEPLOYMENTS, headers=management))
    expect(200)(call("GET", f"{DEPLOYMENTS}/{deployment_id}", headers=management))
    expect(200)(
        call("GET", f"{DEPLOYMENTS}/{deployment_id}/statistics", headers=management)
    )
    expect(200)(
        call("GET", f"{DEPLOYMENTS}/{deployment_id}/devices", headers=management)
    )
    expect(200)(
        call("GET", f"{DEPLOYMENTS}/{deployment_id}/devices/list", headers=management)
    )

    # the device polls, installs and reports
    provides = {
        "device_provides": {
            "device_type": "schema-device",
            "artifact_name": "schema-release-0",
        }
    }
    instructions = expect(200)(
        call("POST", NEXT_V2, json=provides, headers=device)
    ).json()
    assert instructions["id"] == deployment_id
    status_url = f"{DEVICE_DEPLOYMENTS}/{deployment_id}/status"
    for status in ("downloading", "installing", "rebooting", "success"):
        expect(204)(call("PUT", status_url, json={"status": status}, headers=device))
    expect(204)(call("POST", NEXT_V2, json=provides, headers=device))
    finished = expect(200)(
        call("GET", f"{DEPLOYMENTS}/{deployment_id}", headers=management)
    ).json()
    assert finished["status"] == "finished"
    assert finished["statistics"]["status"]["success"] == 1
    expect(200)(
        call(
            "POST",
            f"{DEPLOYMENTS}/statistics/list",
            json={"deployment_ids": [deployment_id]},
            headers=management,
        )
    )
    expect(200)(call("GET", f"{DEPLOYMENTS}/devices/{device_id}", headers=management))

    # errors are documented too
    expect(404)(call("GET", f"{DEPLOYMENTS}/{uuid.uuid4()}", headers=management))
    expect(401)(call("GET", DEPLOYMENTS))
    expect(400)(call("GET", DEVAUTH_DEVICES, params={"page": "x"}, headers=management))

    # then: every operation of the brief was exercised and matched the document
    exercised = {(method, path) for method, path, _status in contract.checked}
    main_flows = {
        ("POST", AUTH_REQUESTS),
        ("PATCH", DEVICE_ATTRIBUTES),
        ("PUT", DEVICE_ATTRIBUTES),
        ("GET", "/api/management/v1/inventory/devices/{device_id}"),
        ("POST", ARTIFACTS),
        ("GET", ARTIFACTS),
        ("GET", "/api/management/v1/deployments/artifacts/{artifact_id}"),
        ("POST", DEPLOYMENTS),
        ("GET", DEPLOYMENTS),
        ("GET", "/api/management/v1/deployments/deployments/{deployment_id}"),
        (
            "GET",
            "/api/management/v1/deployments/deployments/{deployment_id}/statistics",
        ),
        ("GET", "/api/management/v1/deployments/deployments/{deployment_id}/devices"),
        ("POST", NEXT_V2),
        (
            "PUT",
            "/api/devices/v1/deployments/device/deployments/{deployment_id}/status",
        ),
        ("GET", DEVAUTH_DEVICES),
    }
    assert main_flows - exercised == set()


# ---------------------------------------------------------------- the checker itself


def _response(path: str, status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.request = requests.Request("GET", f"http://testserver{path}").prepare()
    return response


def test_contract_accepts_a_documented_body(document: dict[str, Any]) -> None:
    contract = OpenApiContract(document)

    contract.check(_response(f"{DEVAUTH_DEVICES}/count", 200, {"count": 3}))

    assert contract.checked == {("GET", f"{DEVAUTH_DEVICES}/count", 200)}


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, {"count": 3, "extra": 1}, "'extra' was unexpected"),
        (200, {"count": "3"}, "'3' is not of type 'integer'"),
        (200, {}, "'count' is a required property"),
        (418, {"count": 3}, "status not documented"),
        (401, {"error": "unauthorized"}, "'request_id' is a required property"),
    ],
)
def test_contract_refuses_what_the_document_does_not_say(
    document: dict[str, Any], status: int, body: Any, message: str
) -> None:
    contract = OpenApiContract(document)

    with pytest.raises(AssertionError, match=re.escape(message)):
        contract.check(_response(f"{DEVAUTH_DEVICES}/count", status, body))

    assert contract.checked == set()
