"""Fixtures for end-to-end tests: real Mender clients and tools against the real server process.

Every e2e test needs ``transactional_db`` (the server is another process and only sees committed
rows); the fixtures here request it themselves.  Missing binaries or mount-namespace rights skip
the test, unless ``FLOTILLA_REQUIRE_E2E=1`` is set, which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.mender_harness import (
    MENDER_CLI,
    ClientConfig,
    MenderClient,
    MenderFleet,
    client_binaries_missing,
    wait_for,
)
from tests.fixtures.live_server import LiveServer

DEVAUTH_DEVICES = "/api/management/v2/devauth/devices"
LOGIN = "/api/management/v1/useradm/auth/login"
INVENTORY_DEVICES = "/api/management/v1/inventory/devices"
ARTIFACTS = "/api/management/v1/deployments/artifacts"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"

_FLEETS_KEY = pytest.StashKey[list[MenderFleet]]()


def require_e2e(missing: list[str]) -> None:
    """Skip (or fail, with FLOTILLA_REQUIRE_E2E=1) when e2e prerequisites are missing."""
    if not missing:
        return
    message = "e2e prerequisites missing: " + ", ".join(missing)
    if os.environ.get("FLOTILLA_REQUIRE_E2E") == "1":
        pytest.fail(f"{message} (FLOTILLA_REQUIRE_E2E=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def mender_client_prerequisites() -> list[str]:
    """What running real clients needs but is missing here (checked once per session)."""
    return client_binaries_missing()


@pytest.fixture
def require_mender_cli() -> None:
    require_e2e([] if MENDER_CLI.exists() else [str(MENDER_CLI)])


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@pytest.fixture
def e2e_user(transactional_db: None) -> Credentials:
    """A committed management user (email = username) the live server can log in."""
    from django.contrib.auth import get_user_model

    credentials = Credentials("e2e-admin@example.com", "e2e-secret-pass-123")
    get_user_model().objects.create_user(
        username=credentials.username,
        email=credentials.username,
        password=credentials.password,
    )
    return credentials


@dataclass
class ManagementAPI:
    """Thin client for the live server's management API, logged in as ``e2e_user``."""

    base_url: str
    token: str
    session: requests.Session = field(default_factory=requests.Session)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.session.request(
            method, f"{self.base_url}{path}", headers=headers, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def devices(self) -> list[dict[str, Any]]:
        response = self.get(DEVAUTH_DEVICES, params={"per_page": 500})
        assert response.status_code == 200, response.text
        return response.json()

    def device_by_identity(self, identity: dict[str, Any]) -> dict[str, Any] | None:
        matches = [d for d in self.devices() if d["identity_data"] == identity]
        assert len(matches) <= 1, matches
        return matches[0] if matches else None

    def set_auth_set_status(
        self, device_id: str, auth_set_id: str, status: str
    ) -> requests.Response:
        return self.put(
            f"{DEVAUTH_DEVICES}/{device_id}/auth/{auth_set_id}/status",
            json={"status": status},
        )

    def accept_clients(
        self, clients: Iterable[MenderClient], timeout: float = 20.0
    ) -> list[str]:
        """Wait until each client has asked to be authenticated, accept it; device ids in order."""
        device_ids = []
        for client in clients:
            pending = wait_for(
                functools.partial(self.device_by_identity, client.identity),
                timeout,
                description=f"a device with identity {client.identity} ({client.name})",
                diagnostics=client.diagnostics,
            )
            response = self.set_auth_set_status(
                pending["id"], pending["auth_sets"][0]["id"], "accepted"
            )
            assert response.status_code == 204, response.text
            device_ids.append(pending["id"])
        return device_ids

    def set_group(self, device_id: str, group: str) -> None:
        """Put a device in a static group (inventory API)."""
        response = self.put(
            f"{INVENTORY_DEVICES}/{device_id}/group", json={"group": group}
        )
        assert response.status_code == 204, response.text

    def upload_artifact(
        self, path: Path, description: str = "e2e upload"
    ) -> requests.Response:
        """``POST /api/management/v1/deployments/artifacts`` (multipart: size, description, artifact)."""
        with path.open("rb") as artifact:
            return self.post(
                ARTIFACTS,
                data={"size": str(path.stat().st_size), "description": description},
                files={"artifact": (path.name, artifact, "application/octet-stream")},
                timeout=60,
            )

    def create_deployment(self, path: str = DEPLOYMENTS, **body: Any) -> str:
        """Create a deployment (201 expected); return its id (from ``Location``)."""
        response = self.post(path, json=body)
        assert response.status_code == 201, response.text
        return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        response = self.get(f"{DEPLOYMENTS}/{deployment_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def deployment_devices(self, deployment_id: str) -> dict[str, dict[str, Any]]:
        """The deployment's device records by device id."""
        response = self.get(f"{DEPLOYMENTS}/{deployment_id}/devices")
        assert response.status_code == 200, response.text
        return {record["id"]: record for record in response.json()}


@pytest.fixture
def management_api(
    transactional_db: None, live_server_url: str, e2e_user: Credentials
) -> Iterator[ManagementAPI]:
    """Logged in through the real login endpoint (HTTP Basic -> raw JWT)."""
    session = requests.Session()
    response = session.post(
        f"{live_server_url}{LOGIN}",
        auth=(e2e_user.username, e2e_user.password),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    with session:
        yield ManagementAPI(
            base_url=live_server_url, token=response.text, session=session
        )


@pytest.fixture
def remove_stored_artifacts(transactional_db: None) -> Iterator[None]:
    """The live server stores uploads under the shared MEDIA_ROOT: remove them after the test."""
    yield
    from deployments_app.models import Artifact
    from deployments_app.models.artifacts import artifact_storage

    for name in Artifact.objects.values_list("file", flat=True):
        if name:
            artifact_storage().delete(name)


@pytest.fixture
def mender_fleet(
    request: pytest.FixtureRequest,
    transactional_db: None,
    live_server_url: str,
    mender_client_prerequisites: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., MenderFleet]]:
    """Factory: ``mender_fleet(count=1, key_type="p256", start=True, **ClientConfig fields)``.

    Every fleet made is stopped at teardown (before the database is flushed, since this fixture
    depends on ``transactional_db``), and must leave no mounts behind.
    """
    require_e2e(mender_client_prerequisites)
    fleets: list[MenderFleet] = []
    request.node.stash[_FLEETS_KEY] = fleets

    def make(
        count: int = 1, *, key_type: str = "p256", start: bool = True, **config: Any
    ) -> MenderFleet:
        fleet = MenderFleet(
            tmp_path_factory.mktemp("fleet"), live_server_url, ClientConfig(**config)
        )
        fleets.append(fleet)
        for _ in range(count):
            fleet.add_client(key_type=key_type)
        if start:
            fleet.start()
        return fleet

    try:
        yield make
    finally:
        errors = []
        for fleet in fleets:
            try:
                fleet.stop()
            except RuntimeError as exc:
                errors.append(str(exc))
        leaked = [mount for fleet in fleets for mount in fleet.leaked_mounts()]
        assert not errors, errors
        assert not leaked, f"mounts leaked into the test's namespace: {leaked}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, attach each client's log tail and the server log to the report."""
    report = yield
    if report.when == "call" and report.failed:
        for fleet in item.stash.get(_FLEETS_KEY, []):
            report.sections.append(("mender clients", fleet.diagnostics()))
        server: LiveServer | None = getattr(item, "funcargs", {}).get(
            "flotilla_live_server"
        )
        if server is not None:
            tail = "\n".join(server.server_log_text().splitlines()[-60:])
            report.sections.append(("live server log (tail)", tail))
    return report
