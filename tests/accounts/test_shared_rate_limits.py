"""Two real server processes share the rate-limit counters (Redis), so the limit is global."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.live_server import running_server

pytestmark = pytest.mark.django_db(transaction=True)

AUTH_REQUESTS = "/api/devices/v1/authentication/auth_requests"
LOGIN = "/api/management/v1/useradm/auth/login"
# Per day: a window ending during the test would reset the counters (see the limits tests).
LIMIT = 4


@pytest.fixture
def two_servers(django_db_setup: None, tmp_path: Path) -> Any:
    limits = {
        # counters no other test or run has touched
        "FLOTILLA_RATELIMIT_CACHE_PREFIX": f"flotilla-rl-test-{uuid.uuid4().hex}:",
        "FLOTILLA_RATELIMIT_AUTH_REQUESTS_PER_ADDRESS": f"{LIMIT}/d",
        "FLOTILLA_RATELIMIT_LOGIN_PER_ADDRESS": f"{LIMIT}/d",
    }
    with contextlib.ExitStack() as stack:
        servers = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            servers.append(
                stack.enter_context(running_server(tmp_path / name, **limits))
            )
        yield servers


def test_the_auth_request_and_login_limits_are_shared_by_server_processes(
    two_servers: list[Any], transactional_db: None
) -> None:
    assert two_servers[0].process.pid != two_servers[1].process.pid
    alternating = itertools.cycle(server.url for server in two_servers)

    auth_answers = [
        requests.post(f"{next(alternating)}{AUTH_REQUESTS}", json={}, timeout=10)
        for _ in range(LIMIT + 2)
    ]
    login_answers = [
        requests.post(
            f"{next(alternating)}{LOGIN}", auth=("nobody@example.com", "x"), timeout=10
        )
        for _ in range(LIMIT + 2)
    ]

    # each process alone would have allowed LIMIT requests: together they allow LIMIT
    assert [r.status_code for r in auth_answers] == [400] * LIMIT + [429, 429]
    assert [r.status_code for r in login_answers] == [401] * LIMIT + [429, 429]
    for refused in (auth_answers[-1], login_answers[-1]):
        assert 1 <= int(refused.headers["Retry-After"]) <= 24 * 3600
        assert set(refused.json()) == {"error", "request_id"}
