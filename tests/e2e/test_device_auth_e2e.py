"""Device authentication with the real Mender 3.4 client and mender-cli 1.9 against the real server."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devices_app.models import AuthSet, Device, DeviceToken
from tests.e2e.conftest import LOGIN, Credentials, ManagementAPI
from tests.e2e.mender_harness import (
    KEY_GENERATED,
    MENDER_CLI,
    MenderFleet,
    same_public_key,
    wait_for,
)
from tests.fixtures.live_server import AccessLog, AccessLogEntry

pytestmark = pytest.mark.e2e

AUTH_REQUESTS = "/api/devices/v1/authentication/auth_requests"
INVENTORY = "/api/devices/v1/inventory/device/attributes"
NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"
USERS_ME = "/api/management/v1/useradm/users/me"
RETRY_POLL = 1
# Scheduling slack on top of one RetryPollIntervalSeconds (loaded 2-vCPU CI machines).
ACCEPT_MARGIN = 2.0


def _assert_key_type(pubkey_pem: str, key_type: str) -> None:
    key = serialization.load_pem_public_key(pubkey_pem.encode())
    if key_type == KEY_GENERATED:
        assert isinstance(key, rsa.RSAPublicKey)
        assert key.key_size == 3072
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp256r1"


@pytest.mark.parametrize("key_type", [KEY_GENERATED, "p256"])
def test_real_client_waits_while_pending_and_authenticates_once_accepted(
    key_type: str,
    mender_fleet: Callable[..., MenderFleet],
    management_api: ManagementAPI,
    live_server_access_log: AccessLog,
) -> None:
    # given: a fresh client the server has never seen
    fleet = mender_fleet(1, key_type=key_type, retry_poll=RETRY_POLL, update_poll=2)
    client = fleet.clients[0]

    # when: it asks to be authenticated
    pending = wait_for(
        lambda: management_api.device_by_identity(client.identity),
        timeout=20,
        description=f"a device with identity {client.identity}",
        diagnostics=fleet.diagnostics,
    )
    wait_for(
        lambda: live_server_access_log.matching("POST", AUTH_REQUESTS, 401),
        timeout=5,
        description="auth_requests answered 401",
        diagnostics=fleet.diagnostics,
    )

    # then: one pending device, one pending auth set with the client's own key, no token
    assert pending["status"] == "pending"
    assert pending["identity_data"] == client.identity
    assert len(pending["auth_sets"]) == 1
    auth_set = pending["auth_sets"][0]
    assert auth_set["status"] == "pending"
    assert auth_set["identity_data"] == client.identity
    assert same_public_key(auth_set["pubkey"], client.public_key_pem())
    _assert_key_type(auth_set["pubkey"], key_type)
    assert Device.objects.count() == 1
    assert AuthSet.objects.count() == 1
    assert DeviceToken.objects.count() == 0
    assert {e.status for e in live_server_access_log.matching(path=AUTH_REQUESTS)} == {
        401
    }
    assert "authentication request rejected" in client.log_text()

    # when: an operator accepts the auth set
    response = management_api.set_auth_set_status(
        pending["id"], auth_set["id"], "accepted"
    )
    accepted_at = time.monotonic()
    assert response.status_code == 204, response.text

    # then: the client is let in within one retry interval (plus slack) ...
    wait_for(
        lambda: live_server_access_log.matching("POST", AUTH_REQUESTS, 200),
        timeout=RETRY_POLL + ACCEPT_MARGIN,
        interval=0.05,
        description="auth_requests answered 200 after acceptance",
        diagnostics=fleet.diagnostics,
    )
    assert time.monotonic() - accepted_at <= RETRY_POLL + ACCEPT_MARGIN

    # ... and goes on with its token: inventory first, then the update check
    def after_auth() -> list[AccessLogEntry]:
        entries = live_server_access_log.entries()
        first_200 = next(
            i
            for i, e in enumerate(entries)
            if e.path == AUTH_REQUESTS and e.status == 200
        )
        return entries[first_200 + 1 :]

    inventory = wait_for(
        lambda: [e for e in after_auth() if (e.method, e.path) == ("PUT", INVENTORY)],
        timeout=3,
        description="the inventory PUT right after authentication",
        diagnostics=fleet.diagnostics,
    )
    if inventory[0].status != 200:
        # A failed inventory keeps the 3.4 client in inventory-retry (every RetryPoll s) for
        # ~60 s before its first update check; SIGUSR1 forces the check now.
        client.send_sigusr1()
    wait_for(
        lambda: [e for e in after_auth() if (e.method, e.path) == ("POST", NEXT_V2)],
        timeout=3,
        description="deployments/next after authentication",
        diagnostics=fleet.diagnostics,
    )
    auth_statuses = [
        e.status for e in live_server_access_log.matching(path=AUTH_REQUESTS)
    ]
    assert auth_statuses[-1] == 200
    assert auth_statuses.count(200) == 1
    assert set(auth_statuses[:-1]) == {401}
    accepted = management_api.device_by_identity(client.identity)
    assert accepted is not None
    assert accepted["id"] == pending["id"]
    assert accepted["status"] == "accepted"
    assert [(a["id"], a["status"]) for a in accepted["auth_sets"]] == [
        (auth_set["id"], "accepted")
    ]
    assert DeviceToken.objects.filter(device_id=pending["id"]).count() == 1
    assert Device.objects.count() == 1
    assert client.is_running()
    assert client.blocked_commands() == []


def _run_mender_cli(
    tmp_path: Path, server_url: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    home = tmp_path / "home"
    cache = tmp_path / "cache"
    home.mkdir(exist_ok=True)
    cache.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(cache),
    }
    result = subprocess.run(
        [str(MENDER_CLI), "--server", server_url, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, cache / "mender" / "authtoken"


def test_mender_cli_login_saves_a_token_the_server_accepts(
    require_mender_cli: None,
    e2e_user: Credentials,
    live_server_url: str,
    live_server_access_log: AccessLog,
    tmp_path: Path,
) -> None:
    # when
    result, token_file = _run_mender_cli(
        tmp_path,
        live_server_url,
        "login",
        "--username",
        e2e_user.username,
        "--password",
        e2e_user.password,
    )

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert token_file.is_file()
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    me = requests.get(
        f"{live_server_url}{USERS_ME}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert me.status_code == 200, me.text
    assert me.json()["email"] == e2e_user.username
    assert _login_statuses(live_server_access_log) == [200]


def _login_statuses(access_log: AccessLog) -> list[int]:
    """Statuses of the test's login requests, once gunicorn has written them (it logs after answering)."""
    entries = wait_for(
        lambda: access_log.matching("POST", LOGIN),
        timeout=10,
        interval=0.05,
        description="the login request in the access log",
    )
    return [entry.status for entry in entries]


def test_mender_cli_login_with_a_wrong_password_fails_and_saves_nothing(
    require_mender_cli: None,
    e2e_user: Credentials,
    live_server_url: str,
    live_server_access_log: AccessLog,
    tmp_path: Path,
) -> None:
    # when
    result, token_file = _run_mender_cli(
        tmp_path,
        live_server_url,
        "login",
        "--username",
        e2e_user.username,
        "--password",
        "not-the-password",
    )

    # then
    assert result.returncode != 0
    assert "login failed with status 401" in result.stdout + result.stderr
    assert not token_file.exists()
    assert _login_statuses(live_server_access_log) == [401]
