"""/healthz (liveness), /readyz (PostgreSQL, Redis, Celery worker) and 503 on a database outage."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client

from tests.device_keys import make_key, signed_auth_request
from tests.fixtures.celery_worker import CeleryWorker
from tests.fixtures.live_server import LiveServer, start_live_server, stop_live_server


def test_healthz_is_a_constant_answer_without_any_query() -> None:
    # No django_db mark: any database access would raise here.
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.worker
@pytest.mark.django_db
def test_readyz_is_ready_with_database_redis_and_a_live_worker(
    celery_worker: CeleryWorker,
) -> None:
    response = Client().get("/readyz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "celery"}
    for name, check in body["checks"].items():
        assert check["status"] == "ok", name
        assert 0 < check["latency_ms"] < 10_000, name
    assert response.headers["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readyz_is_unavailable_without_a_celery_worker(settings: Any) -> None:
    # given: a broker database no worker listens on (the session worker has its own)
    settings.FLOTILLA_READYZ_TIMEOUT = 0.5

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["celery"] == {
        "status": "unavailable",
        "error": "Unavailable: Celery workers unavailable",
        "latency_ms": body["checks"]["celery"]["latency_ms"],
    }


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_without_database(
    django_db_setup: None, tmp_path: Path
) -> Iterator[LiveServer]:
    """The real server process (gunicorn) whose PostgreSQL does not answer."""
    server = start_live_server(
        tmp_path,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{_closed_port()}/flotilla",
        FLOTILLA_READYZ_TIMEOUT="1",
    )
    try:
        yield server
    finally:
        stop_live_server(server)


def test_database_outage_answers_503_json_on_the_api_and_readyz(
    server_without_database: LiveServer,
) -> None:
    # given: a real server whose database is unreachable, and well-formed requests
    import datetime as dt
    import uuid

    from config.api.tokens import USER_CLAIM, issue_token

    url = server_without_database.url
    # Correctly signed, so the server must look its row up in the database it cannot reach.
    token = issue_token(
        jti=str(uuid.uuid4()),
        subject="1",
        ttl=dt.timedelta(hours=1),
        claims={USER_CLAIM: True},
    )
    body, signature = signed_auth_request(make_key("ed25519"), {"mac": "00:11"})
    basic = base64.b64encode(b"ops@example.com:secret-pass-123").decode()

    # when
    responses = {
        "login": requests.post(
            f"{url}/api/management/v1/useradm/auth/login",
            headers={"Authorization": f"Basic {basic}"},
            timeout=30,
        ),
        "devices": requests.get(
            f"{url}/api/management/v2/devauth/devices",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ),
        "auth_request": requests.post(
            f"{url}/api/devices/v1/authentication/auth_requests",
            data=body,
            headers={"Content-Type": "application/json", "X-MEN-Signature": signature},
            timeout=30,
        ),
    }
    healthz = requests.get(f"{url}/healthz", timeout=30)
    readyz = requests.get(f"{url}/readyz", timeout=30)

    # then: 503 JSON with the request id and Retry-After; liveness unaffected
    for name, response in responses.items():
        assert response.status_code == 503, (name, response.text[:300])
        assert response.headers["Content-Type"] == "application/json", name
        assert response.headers["Retry-After"] == "30", name
        assert response.json() == {
            "error": "service temporarily unavailable",
            "request_id": response.headers["X-Men-Requestid"],
        }
    assert healthz.status_code == 200
    assert readyz.status_code == 503
    assert readyz.json()["checks"]["database"]["status"] == "unavailable"
    assert readyz.json()["checks"]["redis"]["status"] == "ok"
