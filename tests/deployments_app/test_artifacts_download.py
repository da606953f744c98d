"""Signed download links: signature and expiry checks, full and ranged downloads (in-process and live server)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests

from deployments_app.downloads import (
    artifact_download_path,
    make_signed_url,
    verify_signed_request,
)
from deployments_app.exceptions import InvalidDownloadLink
from deployments_app.models import Artifact
from deployments_app.services.artifacts import artifact_download_link
from tests.deployments_app.conftest import BuiltArtifacts

ARTIFACTS_URL = "/api/management/v1/deployments/artifacts"
NOW = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


# ------------------------------------------------------------------ signing (no database)


def _params(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def test_signed_url_verifies_until_it_expires() -> None:
    path = artifact_download_path(artifact_id="abc")
    url = make_signed_url(base_url="https://ota.example.com/", path=path, expire=NOW)

    assert url.startswith(
        "https://ota.example.com/api/devices/v1/deployments/download/artifacts/abc?"
    )
    assert _params(url)["x-men-expire"] == "2030-01-02T03:04:05Z"
    assert (
        verify_signed_request(
            path=path, params=_params(url), now=NOW - dt.timedelta(seconds=1)
        )
        == NOW
    )
    with pytest.raises(InvalidDownloadLink, match="expired"):
        verify_signed_request(path=path, params=_params(url), now=NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        "other_path",
        "later_expiry",
        "flipped_signature",
        "no_signature",
        "no_expiry",
        "bad_expiry",
    ],
)
def test_tampered_link_is_refused(tamper: str) -> None:
    path = artifact_download_path(artifact_id="abc")
    params = _params(make_signed_url(base_url="http://x", path=path, expire=NOW))
    if tamper == "other_path":
        path = artifact_download_path(artifact_id="abd")
    elif tamper == "later_expiry":
        params["x-men-expire"] = "2031-01-02T03:04:05Z"
    elif tamper == "flipped_signature":
        signature = params["x-men-signature"]
        params["x-men-signature"] = ("A" if signature[0] != "A" else "B") + signature[
            1:
        ]
    elif tamper == "no_signature":
        del params["x-men-signature"]
    elif tamper == "no_expiry":
        del params["x-men-expire"]
    elif tamper == "bad_expiry":
        params["x-men-expire"] = "tomorrow"

    with pytest.raises(InvalidDownloadLink):
        verify_signed_request(path=path, params=params, now=NOW - dt.timedelta(days=1))


def test_signature_depends_on_the_secret_key(settings: Any) -> None:
    path = artifact_download_path(artifact_id="abc")
    params = _params(make_signed_url(base_url="http://x", path=path, expire=NOW))

    settings.SECRET_KEY = "another-secret"

    with pytest.raises(InvalidDownloadLink):
        verify_signed_request(path=path, params=params, now=NOW - dt.timedelta(days=1))


# ------------------------------------------------------------------ in-process download view


@pytest.fixture
def stored_artifact(
    db: None,
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
) -> tuple[Artifact, bytes]:
    content = built_artifacts.bytes("random_none")
    response = upload_artifact_file(content)
    assert response.status_code == 201
    return Artifact.objects.get(pk=response["Location"].rsplit("/", 1)[1]), content


def _local_path(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.path}?{parsed.query}"


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_full_download_sends_exact_bytes_and_headers(
    stored_artifact: tuple[Artifact, bytes], client: Any
) -> None:
    artifact, content = stored_artifact
    url, _expire = artifact_download_link(
        artifact=artifact, base_url="http://testserver"
    )

    response = client.get(_local_path(url), HTTP_ACCEPT_ENCODING="gzip")

    assert response.status_code == 200
    assert _body(response) == content
    assert response["Content-Length"] == str(len(content))
    assert response["Content-Type"] == "application/vnd.mender-artifact"
    assert response["Accept-Ranges"] == "bytes"
    assert "Content-Encoding" not in response
    assert response["Content-Disposition"] == 'attachment; filename="random-1.mender"'
    assert "Last-Modified" in response


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=4096-", 4096, None),
        ("bytes=10-19", 10, 19),
        ("bytes=-100", -100, None),
        ("bytes=0-999999999", 0, None),
    ],
)
def test_range_download_is_206_with_content_range(
    stored_artifact: tuple[Artifact, bytes],
    client: Any,
    range_header: str,
    first: int,
    last: int | None,
) -> None:
    artifact, content = stored_artifact
    url, _expire = artifact_download_link(
        artifact=artifact, base_url="http://testserver"
    )
    expected = content[first : None if last is None else last + 1]
    start = first if first >= 0 else len(content) + first

    response = client.get(_local_path(url), HTTP_RANGE=range_header)

    assert response.status_code == 206
    assert _body(response) == expected
    assert response["Content-Length"] == str(len(expected))
    assert (
        response["Content-Range"]
        == f"bytes {start}-{start + len(expected) - 1}/{len(content)}"
    )


def test_range_beyond_the_end_is_416(
    stored_artifact: tuple[Artifact, bytes], client: Any
) -> None:
    artifact, content = stored_artifact
    url, _expire = artifact_download_link(
        artifact=artifact, base_url="http://testserver"
    )

    response = client.get(_local_path(url), HTTP_RANGE=f"bytes={len(content)}-")

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(content)}"


def test_expired_tampered_or_unsigned_download_is_403_json(
    stored_artifact: tuple[Artifact, bytes], client: Any
) -> None:
    artifact, _content = stored_artifact
    path = artifact_download_path(artifact_id=artifact.id)
    expired = make_signed_url(
        base_url="http://testserver",
        path=path,
        expire=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
    )
    valid, _expire = artifact_download_link(
        artifact=artifact, base_url="http://testserver"
    )
    params = _params(valid)
    tampered = f"{path}?{urlencode({**params, 'x-men-expire': '2099-01-01T00:00:00Z'})}"

    for target in (_local_path(expired), tampered, path):
        response = client.get(target)
        assert response.status_code == 403, target
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"]


def test_download_of_a_deleted_artifact_is_404(
    stored_artifact: tuple[Artifact, bytes], client: Any
) -> None:
    artifact, _content = stored_artifact
    url, _expire = artifact_download_link(
        artifact=artifact, base_url="http://testserver"
    )
    Artifact.objects.filter(pk=artifact.pk).delete()

    assert client.get(_local_path(url)).status_code == 404


def test_download_link_ttl_is_configurable(
    stored_artifact: tuple[Artifact, bytes], settings: Any
) -> None:
    artifact, _content = stored_artifact
    settings.FLOTILLA_DOWNLOAD_LINK_TTL = dt.timedelta(minutes=15)

    _url, expire = artifact_download_link(
        artifact=artifact, base_url="http://testserver"
    )

    remaining = expire - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=14) < remaining <= dt.timedelta(minutes=15)


def test_public_url_setting_wins_over_the_request_host(
    stored_artifact: tuple[Artifact, bytes], settings: Any
) -> None:
    artifact, _content = stored_artifact
    settings.FLOTILLA_PUBLIC_URL = "https://ota.example.com"

    url, _expire = artifact_download_link(
        artifact=artifact, base_url="http://internal:8080"
    )

    assert url.startswith(
        "https://ota.example.com/api/devices/v1/deployments/download/artifacts/"
    )


# ------------------------------------------------------------------ through the real server process


@pytest.fixture
def live_artifact(
    transactional_db: None,
    live_server_url: str,
    user_token: str,
    built_artifacts: BuiltArtifacts,
) -> Iterator[tuple[str, bytes]]:
    """An artifact uploaded to the live server with a chunked body; its id and bytes."""
    content = built_artifacts.bytes("random_none")
    response = requests.post(
        f"{live_server_url}{ARTIFACTS_URL}",
        headers={"Authorization": f"Bearer {user_token}"},
        files=[
            ("size", (None, str(len(content)))),
            ("artifact", ("random-1.mender", content)),
        ],
        timeout=30,
    )
    assert response.status_code == 201, response.text
    artifact_id = response.headers["Location"].rsplit("/", 1)[1]
    yield artifact_id, content
    from deployments_app.models.artifacts import artifact_storage

    for name in Artifact.objects.values_list("file", flat=True):
        artifact_storage().delete(name)


def _chunked(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


@pytest.mark.django_db(transaction=True)
def test_live_chunked_upload_then_full_and_ranged_download(
    live_server_url: str,
    user_token: str,
    built_artifacts: BuiltArtifacts,
    live_artifact: tuple[str, bytes],
) -> None:
    # given: a second artifact uploaded with Transfer-Encoding: chunked, like mender-cli does
    content = built_artifacts.bytes("module_xz")
    boundary = "flotilla-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="size"\r\n\r\n{len(content)}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nchunked\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="artifact"; filename="xz.mender"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    upload = requests.post(
        f"{live_server_url}{ARTIFACTS_URL}",
        headers={
            "Authorization": f"Bearer {user_token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        data=_chunked(body),
        timeout=30,
    )
    assert upload.status_code == 201, upload.text
    assert upload.request.headers.get("Transfer-Encoding") == "chunked"
    chunked_artifact = Artifact.objects.get(
        pk=upload.headers["Location"].rsplit("/", 1)[1]
    )
    assert (
        chunked_artifact.name,
        chunked_artifact.description,
        chunked_artifact.size,
    ) == (
        "release-xz",
        "chunked",
        len(content),
    )

    # when: the operator asks for a link and downloads through it without a token
    artifact_id, random_content = live_artifact
    link = requests.get(
        f"{live_server_url}{ARTIFACTS_URL}/{artifact_id}/download",
        headers={"Authorization": f"Bearer {user_token}"},
        timeout=30,
    ).json()
    full = requests.get(link["uri"], headers={"Accept-Encoding": "gzip"}, timeout=30)
    ranged = requests.get(link["uri"], headers={"Range": "bytes=4096-"}, timeout=30)

    # then
    assert link["uri"].startswith(
        f"{live_server_url}/api/devices/v1/deployments/download/artifacts/"
    )
    assert full.status_code == 200
    assert full.content == random_content
    assert full.headers["Content-Length"] == str(len(random_content))
    assert "Transfer-Encoding" not in full.headers
    assert "Content-Encoding" not in full.headers
    assert full.headers["Content-Type"] == "application/vnd.mender-artifact"
    assert ranged.status_code == 206
    assert ranged.content == random_content[4096:]
    assert ranged.headers["Content-Length"] == str(len(random_content) - 4096)
    assert (
        ranged.headers["Content-Range"]
        == f"bytes 4096-{len(random_content) - 1}/{len(random_content)}"
    )
    assert "Transfer-Encoding" not in ranged.headers


@pytest.mark.django_db(transaction=True)
def test_live_expired_and_tampered_links_are_403(
    live_server_url: str, live_artifact: tuple[str, bytes]
) -> None:
    artifact_id, _content = live_artifact
    path = artifact_download_path(artifact_id=artifact_id)
    expired = make_signed_url(
        base_url=live_server_url,
        path=path,
        expire=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
    )
    almost = make_signed_url(
        base_url=live_server_url,
        path=path,
        expire=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2),
    )
    tampered = almost.replace("x-men-expire=", "x-men-expire=1")

    expired_response = requests.get(expired, timeout=30)
    tampered_response = requests.get(tampered, timeout=30)
    fresh_response = requests.get(almost, timeout=30)

    assert expired_response.status_code == 403
    assert expired_response.json()["error"] == "download link expired"
    assert tampered_response.status_code == 403
    assert fresh_response.status_code == 200


def test_head_request_has_the_headers_of_the_download(
    stored_artifact: tuple[Artifact, bytes], client: Any
) -> None:
    artifact, content = stored_artifact
    url, _expire = artifact_download_link(
        artifact=artifact, base_url="http://testserver"
    )

    response = client.head(_local_path(url))

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(content))
    assert response["Content-Type"] == "application/vnd.mender-artifact"
