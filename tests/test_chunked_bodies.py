"""Chunked request bodies (what the Mender client and mender-cli send) reach the views intact."""

from __future__ import annotations

import http.client
import io
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from config.chunked import ChunkedBodyMiddleware
from devices_app.models import AuthSet, Device
from tests.device_keys import make_key, signed_auth_request


def send_chunked(
    base_url: str, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """Send ``body`` with Transfer-Encoding: chunked in several chunks and no Content-Length."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    connection.request(
        method, path, body=iter(chunks), headers=headers, encode_chunked=True
    )
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, payload


@pytest.mark.django_db(transaction=True)
def test_chunked_auth_request_reaches_view_byte_exact(live_server_url: str) -> None:
    # given a signed body: the signature only verifies if every byte arrives unchanged
    key = make_key("p256")
    body, signature = signed_auth_request(key, {"mac": "02:00:00:00:0c:01"})

    # when
    status, payload = send_chunked(
        live_server_url,
        "POST",
        "/api/devices/v1/authentication/auth_requests",
        body,
        {
            "Content-Type": "application/json",
            "Authorization": "Bearer ",
            "X-MEN-Signature": signature,
        },
    )

    # then: a verified, stored pending auth request (401), not a 400 for an empty body
    assert status == 401, payload
    device = Device.objects.get()
    assert device.identity_data == {"mac": "02:00:00:00:0c:01"}
    assert AuthSet.objects.get().pubkey == key.public_pem


@pytest.mark.django_db(transaction=True)
def test_chunked_json_body_on_management_endpoint(
    live_server_url: str, user_token: str
) -> None:
    key = make_key("ed25519")
    body = json.dumps(
        {"identity_data": {"mac": "02:00:00:00:0c:02"}, "pubkey": key.public_pem}
    ).encode()

    status, payload = send_chunked(
        live_server_url,
        "POST",
        "/api/management/v2/devauth/devices",
        body,
        {"Content-Type": "application/json", "Authorization": f"Bearer {user_token}"},
    )

    assert status == 201, payload
    assert Device.objects.get().identity_data == {"mac": "02:00:00:00:0c:02"}


def _call(app: ChunkedBodyMiddleware, body: bytes) -> tuple[str, bytes, bytes]:
    seen: dict[str, bytes] = {}

    def inner(environ: dict, start_response: object) -> list[bytes]:
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [])  # type: ignore[operator]
        return [b"ok"]

    app.app = inner
    statuses: list[str] = []
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body)}
    result = b"".join(app(environ, lambda status, headers: statuses.append(status)))
    return statuses[0], result, seen.get("body", b"")


def test_chunked_body_over_the_limit_is_413_and_never_reaches_the_app() -> None:
    app = ChunkedBodyMiddleware(lambda e, s: [], max_bytes=1000, in_memory_bytes=100)

    status, payload, seen = _call(app, b"x" * 1001)

    assert status.startswith("413")
    assert (
        json.loads(payload)["error"] == "request body exceeds the limit of 1000 bytes"
    )
    assert seen == b""


def test_chunked_body_spills_to_disk_past_threshold_and_arrives_whole() -> None:
    app = ChunkedBodyMiddleware(
        lambda e, s: [], max_bytes=10_000_000, in_memory_bytes=1024
    )
    body = bytes(range(256)) * 4000

    status, payload, seen = _call(app, body)

    assert status == "200 OK"
    assert seen == body


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [("application/json", "413"), ("multipart/form-data; boundary=x", "200")],
)
def test_chunked_non_upload_body_has_the_smaller_bound(
    content_type: str, expected: str
) -> None:
    app = ChunkedBodyMiddleware(
        lambda e, s: [],
        max_bytes=10_000,
        in_memory_bytes=100,
        max_non_upload_bytes=1000,
    )
    seen: dict[str, int] = {}

    def inner(environ: dict, start_response: object) -> list[bytes]:
        seen["length"] = int(environ["CONTENT_LENGTH"])
        start_response("200 OK", [])  # type: ignore[operator]
        return [b"ok"]

    app.app = inner
    statuses: list[str] = []
    environ = {
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": content_type,
        "wsgi.input": io.BytesIO(b"x" * 1001),
    }
    b"".join(app(environ, lambda status, headers: statuses.append(status)))

    assert statuses[0].startswith(expected)
    assert seen == ({} if expected == "413" else {"length": 1001})


@pytest.mark.parametrize(
    ("path", "expected"), [("/up", "200"), ("/admin/login/", "413")]
)
def test_chunked_multipart_body_is_large_only_on_an_upload_path(
    path: str, expected: str
) -> None:
    def inner(environ: dict, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    app = ChunkedBodyMiddleware(
        inner,
        max_bytes=10_000,
        in_memory_bytes=100,
        max_non_upload_bytes=1000,
        upload_paths={"/up"},
    )
    statuses: list[str] = []
    environ = {
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": "multipart/form-data; boundary=x",
        "PATH_INFO": path,
        "wsgi.input": io.BytesIO(b"x" * 1001),
    }
    b"".join(app(environ, lambda status, headers: statuses.append(status)))

    assert statuses[0].startswith(expected)
