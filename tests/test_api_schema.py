"""The OpenAPI document at /api/schema/ (issue 10 §5): complete, valid, warning-free, and true.

True means: the responses of the main flows, through the real server process, validate against
the document (tests/openapi_contract.py), strictly (no undocumented fields).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
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
USERS = "/api/management/v1/useradm/users"
TOKENS = "/api/management/v1/useradm/settings/tokens"
SCHEMA_DEVICE_TERM = {
    "scope": "inventory",
    "attribute": "device_type",
    "type": "$eq",
    "value": "schema-device",
}
PROVIDES = {
    "device_provides": {
        "device_type": "schema-device",
        "artifact_name": "schema-release-0",
    }
}
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
    assert as_yaml.headers["Content-Type"].split(";")[0] == (
        "application/vnd.oai.openapi"
    )
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


class LiveApi:
    """Requests to the live server; every response is checked against the document."""

    def __init__(self, base_url: str, contract: OpenApiContract) -> None:
        self.base_url = base_url
        self.contract = contract
        self.session = requests.Session()

    def call(
        self, method: str, path: str, expect: int, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        response = self.session.request(method, url, **kwargs)
        assert response.status_code == expect, (
            f"{method} {path}: {response.status_code} {response.text[:300]}"
        )
        return self.contract.check(response)

    def authenticate_device(self, mac: str, management: dict[str, str]) -> Device:
        """Auth request (401, pending), accepted by the operator, auth request again (token)."""
        key = make_key("p256")
        body, signature = signed_auth_request(key, {"mac": mac})
        headers = {
            "Authorization": "Bearer ",
            "X-MEN-Signature": signature,
            "Content-Type": "application/json",
        }
        self.call("POST", AUTH_REQUESTS, 401, data=body, headers=headers)
        devices = self.call(
            "GET",
            DEVAUTH_DEVICES,
            200,
            params={"status": "pending"},
            headers=management,
        ).json()
        [pending] = [d for d in devices if d["identity_data"] == {"mac": mac}]
        auth_set_id = pending["auth_sets"][0]["id"]
        self.call(
            "PUT",
            f"{DEVAUTH_DEVICES}/{pending['id']}/auth/{auth_set_id}/status",
            204,
            json={"status": "accepted"},
            headers=management,
        )
        token = self.call("POST", AUTH_REQUESTS, 200, data=body, headers=headers).text
        return Device(id=pending["id"], auth_set_id=auth_set_id, token=token)


@dataclass(frozen=True)
class Device:
    id: str
    auth_set_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def upload_artifact(api: LiveApi, artifact: Path, management: dict[str, str]) -> str:
    with artifact.open("rb") as handle:
        uploaded = api.call(
            "POST",
            ARTIFACTS,
            201,
            data={"description": "schema test"},
            files={"artifact": (artifact.name, handle)},
            headers=management,
        )
    return _last_segment(uploaded.headers["Location"])


def create_deployment(
    api: LiveApi, path: str, body: dict[str, Any], management: dict[str, str]
) -> str:
    created = api.call("POST", path, 201, json=body, headers=management)
    return _last_segment(created.headers["Location"])


def exercise_main_flows(
    api: LiveApi, management: dict[str, str], artifact_file: Path
) -> str:
    """Device auth, inventory, artifact upload, a deployment the device installs; the artifact id."""
    # device authentication: pending, accepted by the operator, then a token
    device = api.authenticate_device("02:00:00:5c:4e:01", management)
    api.call("GET", f"{DEVAUTH_DEVICES}/{device.id}", 200, headers=management)
    api.call(
        "GET",
        f"{DEVAUTH_DEVICES}/count",
        200,
        params={"status": "accepted"},
        headers=management,
    )

    # inventory: the device writes, the operator reads
    attributes = [
        {"name": "device_type", "value": "schema-device"},
        {"name": "artifact_name", "value": "schema-release-0"},
    ]
    api.call("PATCH", DEVICE_ATTRIBUTES, 200, json=attributes, headers=device.headers)
    api.call(
        "PUT",
        DEVICE_ATTRIBUTES,
        200,
        json=[*attributes, {"name": "cpus", "value": ["a53", "a72"]}],
        headers=device.headers,
    )
    inventory = api.call(
        "GET", f"{INVENTORY_DEVICES}/{device.id}", 200, headers=management
    ).json()
    assert {"name": "cpus", "scope": "inventory", "value": ["a53", "a72"]} in (
        inventory["attributes"]
    )
    api.call("GET", INVENTORY_DEVICES, 200, headers=management)
    found = api.call(
        "POST",
        INVENTORY_SEARCH,
        200,
        json={"filters": [SCHEMA_DEVICE_TERM]},
        headers=management,
    ).json()
    assert [d["id"] for d in found] == [device.id]

    # artifacts: upload, list, get
    artifact_id = upload_artifact(api, artifact_file, management)
    api.call("GET", ARTIFACTS, 200, headers=management)
    api.call("GET", f"{ARTIFACTS}/list", 200, headers=management)
    artifact = api.call(
        "GET", f"{ARTIFACTS}/{artifact_id}", 200, headers=management
    ).json()
    assert artifact["name"] == "schema-release-1"

    # deployments: create, list, get, statistics, devices
    deployment_id = create_deployment(
        api,
        DEPLOYMENTS,
        {"name": "schema", "artifact_name": "schema-release-1", "devices": [device.id]},
        management,
    )
    deployment_url = f"{DEPLOYMENTS}/{deployment_id}"
    api.call("GET", DEPLOYMENTS, 200, headers=management)
    api.call("GET", deployment_url, 200, headers=management)
    api.call("GET", f"{deployment_url}/statistics", 200, headers=management)
    api.call("GET", f"{deployment_url}/devices", 200, headers=management)
    api.call("GET", f"{deployment_url}/devices/list", 200, headers=management)

    # the device polls, installs and reports
    instructions = api.call(
        "POST", NEXT_V2, 200, json=PROVIDES, headers=device.headers
    ).json()
    assert instructions["id"] == deployment_id
    status_url = f"{DEVICE_DEPLOYMENTS}/{deployment_id}/status"
    for status in ("downloading", "installing", "rebooting", "success"):
        api.call(
            "PUT", status_url, 204, json={"status": status}, headers=device.headers
        )
    api.call("POST", NEXT_V2, 204, json=PROVIDES, headers=device.headers)
    finished = api.call("GET", deployment_url, 200, headers=management).json()
    assert finished["status"] == "finished"
    assert finished["statistics"]["status"]["success"] == 1

    # errors are documented too
    api.call("GET", f"{DEPLOYMENTS}/{uuid.uuid4()}", 404, headers=management)
    api.call("GET", DEPLOYMENTS, 401)
    api.call("GET", DEVAUTH_DEVICES, 400, params={"page": "x"}, headers=management)
    return artifact_id


@pytest.mark.django_db(transaction=True)
def test_main_flows_answer_as_the_document_says(
    live_server_url: str,
    user_token: str,
    document: dict[str, Any],
    artifact_file: Path,
) -> None:
    api = LiveApi(live_server_url, OpenApiContract(document))
    management = {"Authorization": f"Bearer {user_token}"}

    exercise_main_flows(api, management, artifact_file)

    # then: every operation of the brief was exercised and matched the document
    exercised = {(method, path) for method, path, _status in api.contract.checked}
    main_flows = {
        ("POST", AUTH_REQUESTS),
        ("PATCH", DEVICE_ATTRIBUTES),
        ("PUT", DEVICE_ATTRIBUTES),
        ("GET", "/api/management/v1/inventory/devices/{device_id}"),
        ("POST", ARTIFACTS),
        ("GET", ARTIFACTS),
        ("GET", f"{ARTIFACTS}/{{artifact_id}}"),
        ("POST", DEPLOYMENTS),
        ("GET", DEPLOYMENTS),
        ("GET", f"{DEPLOYMENTS}/{{deployment_id}}"),
        ("GET", f"{DEPLOYMENTS}/{{deployment_id}}/statistics"),
        ("GET", f"{DEPLOYMENTS}/{{deployment_id}}/devices"),
        ("POST", NEXT_V2),
        ("PUT", f"{DEVICE_DEPLOYMENTS}/{{deployment_id}}/status"),
        ("GET", DEVAUTH_DEVICES),
    }
    assert main_flows - exercised == set()


@pytest.fixture
def second_artifact_file(tmp_path: Path) -> Path:
    require_e2e(mender_artifact_missing())
    directory = tmp_path / "second"
    directory.mkdir()
    return build_module_artifact(
        directory,
        "schema-release-2",
        {"payload.txt": b"second\n"},
        device_types=("schema-device",),
    )


@pytest.mark.django_db(transaction=True)
def test_every_operation_answers_as_the_document_says(
    live_server_url: str,
    user_token: str,
    document: dict[str, Any],
    artifact_file: Path,
    second_artifact_file: Path,
) -> None:
    """One pass over every documented operation, each response checked strictly."""
    api = LiveApi(live_server_url, OpenApiContract(document))
    management = {"Authorization": f"Bearer {user_token}"}
    call = api.call

    # useradm and the schema itself
    session_token = call(
        "POST",
        "/api/management/v1/useradm/auth/login",
        200,
        auth=("ops@example.com", "secret-pass-123"),
    ).text
    session = {"Authorization": f"Bearer {session_token}"}
    call("GET", f"{USERS}/me", 200, headers=session)
    call(
        "POST",
        USERS,
        201,
        json={"email": "second@example.com", "password": "second-pass-123"},
        headers=management,
    )
    [second] = call(
        "GET", USERS, 200, params={"email": "second@example.com"}, headers=management
    ).json()
    call(
        "PUT",
        f"{USERS}/{second['id']}",
        204,
        json={"email": "third@example.com"},
        headers=management,
    )
    call("DELETE", f"{USERS}/{second['id']}", 204, headers=management)
    call("GET", f"{USERS}/{second['id']}", 404, headers=management)
    personal_token = call(
        "POST", TOKENS, 200, json={"name": "schema"}, headers=management
    ).text
    # the personal access token authenticates, and so has a last use
    [listed] = call(
        "GET", TOKENS, 200, headers={"Authorization": f"Bearer {personal_token}"}
    ).json()
    assert listed["name"] == "schema"
    assert "last_used" in listed
    call("DELETE", f"{TOKENS}/{listed['id']}", 204, headers=management)
    call("GET", TOKENS, 401, headers={"Authorization": f"Bearer {personal_token}"})
    call("POST", "/api/management/v1/useradm/auth/logout", 202, headers=session)
    call("GET", f"{USERS}/me", 401, headers=session)
    call("GET", SCHEMA_URL, 200, params={"format": "json"})

    artifact_id = exercise_main_flows(api, management, artifact_file)

    # devauth
    device = api.authenticate_device("02:00:00:5c:4e:11", management)
    call("GET", "/api/devices/v1/flotilla/ping", 200, headers=device.headers)
    call("POST", "/api/devices/v1/flotilla/ping", 200, headers=device.headers)
    call(
        "POST",
        DEVAUTH_DEVICES,
        201,
        json={
            "identity_data": {"mac": "02:00:00:5c:4e:12"},
            "pubkey": make_key("p256").public_pem,
        },
        headers=management,
    )
    [preauthorized] = call(
        "GET",
        DEVAUTH_DEVICES,
        200,
        params={"status": "preauthorized"},
        headers=management,
    ).json()
    found = call(
        "POST",
        f"{DEVAUTH_DEVICES}/search",
        200,
        json={"status": "accepted", "id": [device.id]},
        headers=management,
    ).json()
    assert [d["id"] for d in found] == [device.id]
    call(
        "GET", "/api/management/v2/devauth/limits/max_devices", 200, headers=management
    )
    auth_set_url = f"{DEVAUTH_DEVICES}/{device.id}/auth/{device.auth_set_id}"
    call("GET", f"{auth_set_url}/status", 200, headers=management)

    # inventory
    call(
        "PATCH",
        DEVICE_ATTRIBUTES,
        200,
        json=[
            {"name": "device_type", "value": "schema-device"},
            {"name": "artifact_name", "value": "schema-release-0"},
        ],
        headers=device.headers,
    )
    inventory_url = f"{INVENTORY_DEVICES}/{device.id}"
    tags = [{"name": "env", "value": "lab"}]
    call("PUT", f"{inventory_url}/tags", 200, json=tags, headers=management)
    call("PATCH", f"{inventory_url}/tags", 200, json=tags, headers=management)
    call(
        "PUT", f"{inventory_url}/group", 204, json={"group": "lab"}, headers=management
    )
    call("GET", f"{inventory_url}/group", 200, headers=management)
    call("GET", "/api/management/v1/inventory/groups", 200, headers=management)
    group_devices = "/api/management/v1/inventory/groups/lab/devices"
    call("GET", group_devices, 200, headers=management)
    call("PATCH", group_devices, 200, json=[device.id], headers=management)
    filters = "/api/management/v2/inventory/filters"
    call("GET", f"{filters}/attributes", 200, headers=management)
    saved = call(
        "POST",
        filters,
        201,
        json={"name": "schema-devices", "terms": [SCHEMA_DEVICE_TERM]},
        headers=management,
    ).json()
    call("GET", filters, 200, headers=management)
    call("GET", f"{filters}/{saved['id']}", 200, headers=management)
    members = call(
        "GET", f"{filters}/{saved['id']}/search", 200, headers=management
    ).json()
    assert device.id in [d["id"] for d in members]
    found = call(
        "POST", INVENTORY_SEARCH, 200, json={"text": "lab"}, headers=management
    ).json()
    assert [d["id"] for d in found] == [device.id]

    # artifacts and releases
    second_id = upload_artifact(api, second_artifact_file, management)
    call("GET", f"{ARTIFACTS}/list", 200, headers=management)
    call(
        "PUT",
        f"{ARTIFACTS}/{second_id}",
        204,
        json={"description": "edited"},
        headers=management,
    )
    call("DELETE", f"{ARTIFACTS}/{second_id}", 204, headers=management)
    link = call(
        "GET", f"{ARTIFACTS}/{artifact_id}/download", 200, headers=management
    ).json()
    downloaded = call("GET", link["uri"], 200)
    assert downloaded.content == artifact_file.read_bytes()
    releases_v1 = "/api/management/v1/deployments/deployments/releases"
    releases_v2 = "/api/management/v2/deployments/deployments/releases"
    call("GET", releases_v1, 200, headers=management)
    call("GET", f"{releases_v1}/list", 200, headers=management)
    call("GET", releases_v2, 200, headers=management)
    release_url = f"{releases_v2}/schema-release-1"
    call("PATCH", release_url, 204, json={"notes": "n"}, headers=management)
    call("PUT", f"{release_url}/tags", 204, json=["t1"], headers=management)
    call("GET", release_url, 200, headers=management)
    call(
        "GET",
        "/api/management/v2/deployments/releases/all/tags",
        200,
        headers=management,
    )
    call(
        "GET",
        "/api/management/v2/deployments/releases/all/types",
        200,
        headers=management,
    )

    # a deployment the device fails, with a log
    deployment_id = create_deployment(
        api,
        DEPLOYMENTS,
        {"name": "fails", "artifact_name": "schema-release-1", "devices": [device.id]},
        management,
    )
    deployment_url = f"{DEPLOYMENTS}/{deployment_id}"
    call("GET", f"{deployment_url}/device_list", 200, headers=management)
    next_v1 = "/api/devices/v1/deployments/device/deployments/next"
    call(
        "GET",
        next_v1,
        200,
        params={"artifact_name": "schema-release-0", "device_type": "schema-device"},
        headers=device.headers,
    )
    call("POST", next_v1, 200, json=PROVIDES["device_provides"], headers=device.headers)
    status_url = f"{DEVICE_DEPLOYMENTS}/{deployment_id}/status"
    call("PUT", status_url, 204, json={"status": "downloading"}, headers=device.headers)
    log = {
        "messages": [
            {"timestamp": "2026-01-02T03:04:05Z", "level": "error", "message": "boom"}
        ]
    }
    call(
        "PUT",
        f"{DEVICE_DEPLOYMENTS}/{deployment_id}/log",
        204,
        json=log,
        headers=device.headers,
    )
    call("PUT", status_url, 204, json={"status": "failure"}, headers=device.headers)
    text = call(
        "GET", f"{deployment_url}/devices/{device.id}/log", 200, headers=management
    ).text
    assert "boom" in text
    call(
        "POST",
        f"{DEPLOYMENTS}/statistics/list",
        200,
        json={"deployment_ids": [deployment_id]},
        headers=management,
    )
    history = call("GET", f"{DEPLOYMENTS}/devices/{device.id}", 200, headers=management)
    assert history.json()[0]["device"]["status"] == "failure"

    # group and dynamic deployments, aborted
    group_deployment = create_deployment(
        api,
        f"{DEPLOYMENTS}/group/lab",
        {"name": "group", "artifact_name": "schema-release-1"},
        management,
    )
    call(
        "PUT",
        f"{DEPLOYMENTS}/{group_deployment}/status",
        204,
        json={"status": "aborted"},
        headers=management,
    )
    dynamic_deployment = create_deployment(
        api,
        "/api/management/v2/deployments/deployments",
        {
            "name": "dynamic",
            "artifact_name": "schema-release-1",
            "filter_id": saved["id"],
        },
        management,
    )
    call(
        "PUT",
        f"{DEPLOYMENTS}/{dynamic_deployment}/status",
        204,
        json={"status": "aborted"},
        headers=management,
    )
    call("DELETE", f"{DEPLOYMENTS}/devices/{device.id}", 204, headers=management)
    call(
        "DELETE", f"{DEPLOYMENTS}/devices/{device.id}/history", 204, headers=management
    )

    # taking things apart
    call("DELETE", f"{inventory_url}/group/lab", 204, headers=management)
    call("PATCH", group_devices, 200, json=[device.id], headers=management)
    call("DELETE", group_devices, 200, json=[device.id], headers=management)
    call(
        "PUT", f"{inventory_url}/group", 204, json={"group": "lab"}, headers=management
    )
    call("DELETE", "/api/management/v1/inventory/groups/lab", 200, headers=management)
    call("DELETE", f"{filters}/{saved['id']}", 204, headers=management)
    call(
        "DELETE",
        f"{DEVAUTH_DEVICES}/{preauthorized['id']}/auth/{preauthorized['auth_sets'][0]['id']}",
        204,
        headers=management,
    )
    token_id = jwt.decode(device.token, options={"verify_signature": False})["jti"]
    call(
        "DELETE",
        f"/api/management/v2/devauth/tokens/{token_id}",
        204,
        headers=management,
    )
    call("DELETE", inventory_url, 204, headers=management)
    call("DELETE", f"{DEVAUTH_DEVICES}/{device.id}", 204, headers=management)
    call(
        "DELETE",
        releases_v2,
        204,
        params={"name": "schema-release-1"},
        headers=management,
    )

    # then: every documented operation was called and answered as documented
    exercised = {(method, path) for method, path, _status in api.contract.checked}
    missing = sorted(api.contract.operations() - exercised)
    assert missing == [], "never called: " + ", ".join(map(" ".join, missing))


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
