"""The input policy through the real server (gunicorn): the measured 500s and the 4 MB auth request."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from tests import factories
from tests.api_surface import table_fingerprint
from tests.device_keys import auth_request_body, make_key
from tests.e2e.mender_harness import wait_for
from tests.fixtures.live_server import AccessLog

AUTH_REQUESTS = "/api/devices/v1/authentication/auth_requests"

pytestmark = pytest.mark.django_db(transaction=True)


def send(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    *,
    chunked: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    """One request; ``chunked`` sends the body in 64 KiB chunks without Content-Length (Mender client)."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None  # the live server's URL
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    if chunked and body is not None:
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        connection.request(
            method, path, body=chunks, headers=headers, encode_chunked=True
        )
    else:
        connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), payload


def assert_json_error(status: int, payload: bytes, expected: int) -> None:
    assert status == expected, payload[:300]
    assert set(json.loads(payload)) == {"error", "request_id"}


def test_nul_in_search_is_a_json_400_not_a_traceback(
    live_server_url: str, user_token: str
) -> None:
    status, headers, payload = send(
        live_server_url,
        "GET",
        "/api/management/v1/deployments/deployments?search=%00",
        None,
        {"Authorization": f"Bearer {user_token}"},
    )

    assert_json_error(status, payload, 400)
    assert headers["Content-Type"].startswith("application/json")


def test_device_log_with_nul_and_deep_json_are_400(live_server_url: str) -> None:
    # given
    device, token = factories.accepted_device("02:00:00:00:1e:01")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    path = "/api/devices/v1/deployments/device/deployments/00000000-0000-4000-8000-000000000001/log"
    before = table_fingerprint()
    nul_log = json.dumps(
        {"messages": [{"timestamp": "t", "level": "info", "message": "a\u0000b"}]}
    )

    # when / then
    for body in (nul_log.encode(), b"[" * 100_000 + b"]" * 100_000):
        status, _, payload = send(live_server_url, "PUT", path, body, headers)
        assert_json_error(status, payload, 400)
    assert table_fingerprint() == before


def test_four_megabyte_chunked_auth_request_is_413_and_stores_nothing(
    live_server_url: str, live_server_access_log: AccessLog
) -> None:
    """Issue 12 item 2: ten of these grew the device table by 43 MB."""
    key = make_key("p256")
    body = auth_request_body(key, {"mac": "m", "blob": "x" * 4 * 1024 * 1024})
    before = table_fingerprint()

    try:
        status, _, payload = send(
            live_server_url,
            "POST",
            AUTH_REQUESTS,
            body,
            {
                "Content-Type": "application/json",
                "Authorization": "Bearer ",
                "X-MEN-Signature": key.sign(body),
            },
            chunked=True,
        )
    except (BrokenPipeError, ConnectionResetError):
        # The server answered and closed before reading the rest of the body, so the client may
        # lose the answer to the reset; the access log still says what it was.
        pass
    else:
        assert_json_error(status, payload, 413)

    logged = wait_for(
        lambda: live_server_access_log.matching("POST", AUTH_REQUESTS),
        timeout=10,
        interval=0.05,
        description="the auth request in the access log",
    )
    assert [entry.status for entry in logged] == [413]
    assert table_fingerprint() == before
