"""Storage selection: local files by default, an S3 bucket (django-storages) when FLOTILLA_S3_BUCKET is set."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from deployments_app.downloads import artifact_download_path, make_signed_url
from deployments_app.models import Artifact, Release
from deployments_app.services.artifacts import artifact_download_link, is_local_storage

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _settings_in_fresh_process(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json; from config.settings import base; "
        "print(json.dumps({'storage': base.STORAGES['artifacts'], 'ttl': base.FLOTILLA_DOWNLOAD_LINK_TTL.total_seconds(), "
        "'max': base.FLOTILLA_MAX_ARTIFACT_SIZE}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOTILLA_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_defaults_are_local_storage_24h_links_and_10_gib_uploads() -> None:
    loaded = _settings_in_fresh_process({})

    assert loaded["storage"] == {
        "BACKEND": "django.core.files.storage.FileSystemStorage"
    }
    assert loaded["ttl"] == 24 * 3600
    assert loaded["max"] == 10 * 1024**3


def test_s3_bucket_setting_selects_django_storages_s3() -> None:
    from storages.backends.s3 import S3Storage

    loaded = _settings_in_fresh_process(
        {
            "FLOTILLA_S3_BUCKET": "flotilla-artifacts",
            "FLOTILLA_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "FLOTILLA_S3_ACCESS_KEY": "AKIDEXAMPLE",
            "FLOTILLA_S3_SECRET_KEY": "secret",
            "FLOTILLA_S3_REGION": "us-east-1",
            "FLOTILLA_DOWNLOAD_LINK_TTL": "900",
        }
    )

    assert loaded["storage"]["BACKEND"] == "storages.backends.s3.S3Storage"
    assert loaded["ttl"] == 900
    # The options are ones S3Storage accepts.
    storage = S3Storage(**loaded["storage"]["OPTIONS"])
    assert storage.bucket_name == "flotilla-artifacts"
    assert not is_local_storage(storage)


@pytest.fixture
def s3_artifact(db: None, monkeypatch: pytest.MonkeyPatch) -> Artifact:
    """An artifact row whose file lives in an (unreachable) S3 bucket; presigning needs no network."""
    from storages.backends.s3 import S3Storage

    storage = S3Storage(
        bucket_name="flotilla-artifacts",
        endpoint_url="http://127.0.0.1:9",
        access_key="AKIDEXAMPLE",
        secret_key="secret",
        region_name="us-east-1",
        signature_version="s3v4",
        addressing_style="path",
        querystring_auth=True,
        default_acl=None,
    )
    monkeypatch.setattr(Artifact._meta.get_field("file"), "storage", storage)
    release = Release.objects.create(name="s3-release")
    artifact_id = uuid.uuid4()
    return Artifact.objects.create(
        id=artifact_id,
        release=release,
        name="s3-release",
        device_types_compatible=["dev-a"],
        info_version=3,
        depends={"device_type": ["dev-a"]},
        size=5120,
        file=f"artifacts/{artifact_id}.mender",
    )


def test_s3_download_link_is_a_presigned_bucket_url(
    s3_artifact: Artifact, settings: Any
) -> None:
    settings.FLOTILLA_PUBLIC_URL = "https://ota.example.com"

    url, expire = artifact_download_link(artifact=s3_artifact)

    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    assert (parsed.scheme, parsed.netloc) == ("http", "127.0.0.1:9")
    assert parsed.path == f"/flotilla-artifacts/artifacts/{s3_artifact.id}.mender"
    assert query["X-Amz-Expires"] == ["86400"]
    assert query["X-Amz-Signature"][0]
    assert query["response-content-type"] == ["application/vnd.mender-artifact"]
    assert expire.tzinfo is not None


def test_signed_local_link_to_an_s3_artifact_redirects_to_the_bucket(
    s3_artifact: Artifact, client: Any
) -> None:
    path = artifact_download_path(artifact_id=s3_artifact.id)
    url = make_signed_url(
        base_url="http://testserver",
        path=path,
        expire=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )

    response = client.get(url.removeprefix("http://testserver"))

    assert response.status_code == 302
    assert response["Location"].startswith(
        "http://127.0.0.1:9/flotilla-artifacts/artifacts/"
    )
