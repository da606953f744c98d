"""Admin: artifact upload through the upload service, release and artifact pages, edit and delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployments_app.models import Artifact, Release
from tests.deployments_app.conftest import BuiltArtifacts, stored_files

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/deployments_app/artifact/add/"


def test_admin_upload_form_renders(admin_client: Any) -> None:
    response = admin_client.get(ADD_URL)

    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content
    assert b'name="artifact"' in response.content


def test_admin_upload_stores_the_artifact_through_the_service(
    admin_client: Any, built_artifacts: BuiltArtifacts, media_root: Path
) -> None:
    with built_artifacts.path("signed_ecdsa").open("rb") as upload:
        response = admin_client.post(
            ADD_URL, {"artifact": upload, "description": "from the admin"}
        )

    artifact = Artifact.objects.get()
    assert response.status_code == 302
    assert (
        response["Location"] == f"/admin/deployments_app/artifact/{artifact.pk}/change/"
    )
    assert (artifact.name, artifact.description, artifact.signed) == (
        "signed-ec",
        "from the admin",
        True,
    )
    assert Path(artifact.file.path).read_bytes() == built_artifacts.bytes(
        "signed_ecdsa"
    )
    assert Release.objects.filter(name="signed-ec").exists()


def test_admin_upload_of_a_corrupt_file_shows_the_reason_and_stores_nothing(
    admin_client: Any, built_artifacts: BuiltArtifacts, media_root: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mender"
    content = built_artifacts.bytes("module_gzip")
    broken.write_bytes(content[: len(content) // 2])

    with broken.open("rb") as upload:
        response = admin_client.post(ADD_URL, {"artifact": upload})

    assert response.status_code == 200
    assert b"unexpected end of data" in response.content
    assert Artifact.objects.count() == 0
    assert stored_files(media_root) == []


def test_admin_upload_conflict_is_shown_on_the_form(
    admin_client: Any, built_artifacts: BuiltArtifacts, media_root: Path
) -> None:
    for name in ("dup_ab", "dup_b"):
        with built_artifacts.path(name).open("rb") as upload:
            response = admin_client.post(ADD_URL, {"artifact": upload})

    assert response.status_code == 200
    assert b"same name and depends already exists" in response.content
    assert Artifact.objects.count() == 1


@pytest.fixture
def two_artifacts(
    admin_client: Any, built_artifacts: BuiltArtifacts, media_root: Path
) -> list[Artifact]:
    for name in ("dup_ab", "dup_c"):
        with built_artifacts.path(name).open("rb") as upload:
            assert admin_client.post(ADD_URL, {"artifact": upload}).status_code == 302
    return list(Artifact.objects.order_by("modified"))


def test_admin_lists_releases_and_artifacts(
    admin_client: Any, two_artifacts: list[Artifact]
) -> None:
    releases = admin_client.get("/admin/deployments_app/release/")
    artifacts = admin_client.get("/admin/deployments_app/artifact/")
    release = admin_client.get(
        f"/admin/deployments_app/release/{Release.objects.get().pk}/change/"
    )
    artifact = admin_client.get(
        f"/admin/deployments_app/artifact/{two_artifacts[0].pk}/change/"
    )

    assert (
        releases.status_code
        == artifacts.status_code
        == release.status_code
        == artifact.status_code
        == 200
    )
    assert b"dev-a, dev-b, dev-c" in releases.content
    assert b"dev-a, dev-b" in artifacts.content
    assert b"&quot;device_type&quot;" in artifact.content
    assert str(two_artifacts[1].pk).encode() in release.content


def test_admin_edits_the_description(
    admin_client: Any, two_artifacts: list[Artifact]
) -> None:
    artifact = two_artifacts[0]

    response = admin_client.post(
        f"/admin/deployments_app/artifact/{artifact.pk}/change/",
        {"description": "edited in admin"},
    )

    assert response.status_code == 302
    artifact.refresh_from_db()
    assert artifact.description == "edited in admin"


def test_admin_delete_goes_through_the_service(
    admin_client: Any,
    two_artifacts: list[Artifact],
    media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    artifact = two_artifacts[0]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/deployments_app/artifact/{artifact.pk}/delete/", {"post": "yes"}
        )

    assert response.status_code == 302
    assert list(Artifact.objects.all()) == [two_artifacts[1]]
    assert len(stored_files(media_root)) == 1
