"""Upload of real mender-artifact 3.9 artifacts through the management API, and their JSON round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from deployments_app.models import Artifact, ArtifactDependsKey, Release
from tests.deployments_app.conftest import (
    META_DATA,
    BuiltArtifacts,
    sha256,
    stored_files,
)

pytestmark = pytest.mark.django_db

ARTIFACTS_URL = "/api/management/v1/deployments/artifacts"


def _uploaded_id(response: Any) -> str:
    assert response.status_code == 201, response.content
    location = response["Location"]
    assert location.startswith("./management/v1/deployments/artifacts/")
    assert response.content == b""
    return location.rsplit("/", 1)[1]


def _rfc3339(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    assert parsed.tzinfo is not None
    assert text.endswith("Z")
    return parsed


def test_upload_module_image_gzip_round_trips_every_field(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    management_client: Any,
) -> None:
    # given
    content = built_artifacts.bytes("module_gzip")

    # when
    artifact_id = _uploaded_id(
        upload_artifact_file(content, description="first upload")
    )
    body = management_client.get(f"{ARTIFACTS_URL}/{artifact_id}").json()

    # then
    assert body["id"] == artifact_id
    assert body["name"] == "release-1"
    assert body["description"] == "first upload"
    assert body["device_types_compatible"] == ["dev-a", "dev-b"]
    assert body["info"] == {"format": "mender", "version": 3}
    assert body["signed"] is False
    assert body["size"] == len(content)
    _rfc3339(body["modified"])
    assert body["artifact_provides"] == {
        "artifact_name": "release-1",
        "custom.key": "custom-value",
        "rootfs-image.single-file.version": "release-1",
    }
    assert body["artifact_depends"] == {
        "device_type": ["dev-a", "dev-b"],
        "custom.dep": "needed",
    }
    assert body["clears_artifact_provides"] == ["rootfs-image.single-file.*"]
    [update] = body["updates"]
    assert update["type_info"] == {"type": "single-file"}
    assert update["meta_data"] == [META_DATA]
    files = {f["name"]: f for f in update["files"]}
    inputs = built_artifacts.inputs
    assert set(files) == {"payload.txt", "second.bin"}
    for name, entry in files.items():
        data = (inputs / name).read_bytes()
        assert entry["size"] == len(data)
        assert entry["checksum"] == sha256(data)
        assert _rfc3339(entry["date"]) == dt.datetime(
            2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC
        )
    # The stored file is byte for byte the upload.
    artifact = Artifact.objects.get(pk=artifact_id)
    assert Path(artifact.file.path).read_bytes() == content
    assert stored_files(media_root) == [Path(artifact.file.path)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "module_none",
            {
                "name": "release-2",
                "device_types_compatible": ["probe-device", "other-device"],
                "type": "probe-sandbox",
                "meta_data": [META_DATA],
                "signed": False,
                "files": ["payload.txt"],
            },
        ),
        (
            "module_xz",
            {
                "name": "release-xz",
                "device_types_compatible": ["dev-a"],
                "type": "single-file",
                "meta_data": [],
                "signed": False,
                "files": ["second.bin"],
            },
        ),
        (
            "rootfs",
            {
                "name": "rootfs-1",
                "device_types_compatible": ["qemux86-64", "raspberrypi4"],
                "type": "rootfs-image",
                "meta_data": [],
                "signed": False,
                "files": ["rootfs.ext4"],
            },
        ),
        (
            "signed_ecdsa",
            {
                "name": "signed-ec",
                "device_types_compatible": ["dev-a"],
                "type": "single-file",
                "meta_data": [],
                "signed": True,
                "files": ["payload.txt"],
            },
        ),
    ],
)
def test_upload_round_trips_compression_types_and_signature(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    management_client: Any,
    name: str,
    expected: dict[str, Any],
) -> None:
    content = built_artifacts.bytes(name)

    artifact_id = _uploaded_id(upload_artifact_file(content))
    body = management_client.get(f"{ARTIFACTS_URL}/{artifact_id}").json()

    assert body["name"] == expected["name"]
    assert body["device_types_compatible"] == expected["device_types_compatible"]
    assert body["signed"] is expected["signed"]
    assert body["size"] == len(content)
    assert (
        body["artifact_depends"]["device_type"] == expected["device_types_compatible"]
    )
    assert body["artifact_provides"]["artifact_name"] == expected["name"]
    [update] = body["updates"]
    assert update["type_info"] == {"type": expected["type"]}
    assert update["meta_data"] == expected["meta_data"]
    assert [f["name"] for f in update["files"]] == expected["files"]
    for entry in update["files"]:
        data = (built_artifacts.inputs / entry["name"]).read_bytes()
        assert (entry["size"], entry["checksum"]) == (len(data), sha256(data))


def test_upload_rootfs_image_provides_checksum_and_default_clears(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    management_client: Any,
) -> None:
    artifact_id = _uploaded_id(upload_artifact_file(built_artifacts.bytes("rootfs")))

    body = management_client.get(f"{ARTIFACTS_URL}/{artifact_id}").json()

    image = (built_artifacts.inputs / "rootfs.ext4").read_bytes()
    assert body["artifact_provides"] == {
        "artifact_name": "rootfs-1",
        "rootfs-image.checksum": sha256(image),
        "rootfs-image.version": "rootfs-1",
    }
    assert body["clears_artifact_provides"] == [
        "artifact_group",
        "rootfs_image_checksum",
        "rootfs-image.*",
    ]


def test_upload_registers_release_and_depends_keys(
    built_artifacts: BuiltArtifacts, media_root: Path, upload_artifact_file: Any
) -> None:
    artifact_id = _uploaded_id(
        upload_artifact_file(built_artifacts.bytes("module_gzip"))
    )

    artifact = Artifact.objects.get(pk=artifact_id)
    assert artifact.release.name == "release-1"
    assert sorted(
        (k.name, tuple(sorted(k.combination.items())))
        for k in ArtifactDependsKey.objects.filter(artifact=artifact)
    ) == [
        ("release-1", (("custom.dep", "needed"), ("device_type", "dev-a"))),
        ("release-1", (("custom.dep", "needed"), ("device_type", "dev-b"))),
    ]


def test_upload_calls_the_deployment_refresh_hook(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deployments_app.services import artifacts as services

    calls: list[str] = []
    monkeypatch.setattr(
        services,
        "on_artifact_uploaded",
        lambda *, artifact_name: calls.append(artifact_name),
    )

    _uploaded_id(upload_artifact_file(built_artifacts.bytes("module_xz")))

    assert calls == ["release-xz"]


def test_same_name_overlapping_device_type_is_a_conflict(
    built_artifacts: BuiltArtifacts, media_root: Path, upload_artifact_file: Any
) -> None:
    # given
    first_id = _uploaded_id(upload_artifact_file(built_artifacts.bytes("dup_ab")))
    files_before = stored_files(media_root)

    # when
    response = upload_artifact_file(built_artifacts.bytes("dup_b"))

    # then
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "an artifact with the same name and depends already exists"
    assert body["metadata"] == {"conflict": {"device_type": "dev-b"}}
    assert body["request_id"]
    assert list(Artifact.objects.values_list("id", flat=True)) == [
        Artifact.objects.get(pk=first_id).id
    ]
    assert stored_files(media_root) == files_before


def test_same_name_disjoint_device_types_share_one_release(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    management_client: Any,
) -> None:
    first = _uploaded_id(upload_artifact_file(built_artifacts.bytes("dup_ab")))
    second = _uploaded_id(upload_artifact_file(built_artifacts.bytes("dup_c")))

    assert first != second
    assert Artifact.objects.filter(name="dup").count() == 2
    assert Release.objects.filter(name="dup").count() == 1
    assert len(stored_files(media_root)) == 2


def test_conflict_between_check_and_insert_is_caught_by_the_database(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two racing uploads both pass the early check; the unique key stops the second one."""
    from deployments_app.services import artifacts as services

    # given: the first upload is registered; the early check of the second one is skipped
    _uploaded_id(upload_artifact_file(built_artifacts.bytes("dup_ab")))
    real_check = services._raise_on_conflict
    calls = {"n": 0}

    def check_only_after_failure(keys: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            real_check(keys)

    monkeypatch.setattr(services, "_raise_on_conflict", check_only_after_failure)

    # when
    response = upload_artifact_file(built_artifacts.bytes("dup_b"))

    # then
    assert response.status_code == 409
    assert response.json()["metadata"] == {"conflict": {"device_type": "dev-b"}}
    assert Artifact.objects.count() == 1
    assert len(stored_files(media_root)) == 1


def test_size_field_over_the_limit_is_413(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    settings: Any,
) -> None:
    settings.FLOTILLA_MAX_ARTIFACT_SIZE = 1024 * 1024
    content = built_artifacts.bytes("module_gzip")

    response = upload_artifact_file(content, size=2 * 1024 * 1024)

    assert response.status_code == 413
    assert "limit" in response.json()["error"]
    assert Artifact.objects.count() == 0
    assert stored_files(media_root) == []


def test_file_over_the_limit_is_413(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    settings: Any,
) -> None:
    content = built_artifacts.bytes("random_none")
    settings.FLOTILLA_MAX_ARTIFACT_SIZE = len(content) - 1

    response = upload_artifact_file(content)

    assert response.status_code == 413
    assert Artifact.objects.count() == 0
    assert stored_files(media_root) == []


def test_size_field_that_does_not_match_the_file_is_400(
    built_artifacts: BuiltArtifacts, media_root: Path, upload_artifact_file: Any
) -> None:
    content = built_artifacts.bytes("module_gzip")

    response = upload_artifact_file(content, size=len(content) + 1)

    assert response.status_code == 400
    assert "size mismatch" in response.json()["error"]
    assert Artifact.objects.count() == 0
    assert stored_files(media_root) == []


def test_upload_without_artifact_part_is_400(
    management_client: Any, media_root: Path
) -> None:
    response = management_client.post(
        ARTIFACTS_URL, {"size": "10", "description": "x"}, format="multipart"
    )

    assert response.status_code == 400
    assert "artifact" in response.json()["error"]
    assert Artifact.objects.count() == 0


def test_upload_needs_a_user_token(
    api_client: Any, built_artifacts: BuiltArtifacts, media_root: Path
) -> None:
    response = api_client.post(
        ARTIFACTS_URL,
        {"artifact": built_artifacts.path("module_gzip").open("rb")},
        format="multipart",
    )

    assert response.status_code == 401
    assert Artifact.objects.count() == 0
    assert stored_files(media_root) == []


def test_upload_with_artifact_id_uses_it(
    built_artifacts: BuiltArtifacts, media_root: Path, management_client: Any
) -> None:
    wanted = "0c13a0e6-6b22-4f3b-9a57-3d2b2f0c9a11"
    with built_artifacts.path("module_xz").open("rb") as upload:
        response = management_client.post(
            ARTIFACTS_URL,
            {"artifact_id": wanted, "artifact": upload},
            format="multipart",
        )

    assert _uploaded_id(response) == wanted
    assert str(Artifact.objects.get().id) == wanted


def test_body_far_over_the_limit_is_refused_before_parsing(
    media_root: Path, upload_artifact_file: Any, settings: Any
) -> None:
    settings.FLOTILLA_MAX_ARTIFACT_SIZE = 100

    response = upload_artifact_file(b"x" * (1024 * 1024 + 4096))

    assert response.status_code == 413
    assert Artifact.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("first", "second", "expected_rows"),
    [("dup_ab", "dup_b", 1), ("dup_ab", "dup_c", 2)],
)
def test_concurrent_uploads_of_one_name_respect_depends_uniqueness(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    first: str,
    second: str,
    expected_rows: int,
) -> None:
    """Two uploads race past the early check at once; the database keeps (name, depends) unique."""
    import threading

    from django.db import connection

    from deployments_app.exceptions import ArtifactConflict
    from deployments_app.services import artifacts as services

    # given: both threads wait at the barrier right before registering
    barrier = threading.Barrier(2)
    real_register = services.register_artifact
    outcomes: dict[str, str] = {}

    def register_together(**kwargs: Any) -> Any:
        barrier.wait(timeout=10)
        return real_register(**kwargs)

    def upload(name: str) -> None:
        try:
            with built_artifacts.path(name).open("rb") as file:
                services.upload_artifact(file=file)
            outcomes[name] = "created"
        except ArtifactConflict:
            outcomes[name] = "conflict"
        finally:
            connection.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "register_artifact", register_together)
        threads = [
            threading.Thread(target=upload, args=(name,)) for name in (first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    # then
    assert sorted(outcomes.values()) == (
        ["conflict", "created"] if expected_rows == 1 else ["created", "created"]
    )
    assert Artifact.objects.filter(name="dup").count() == expected_rows
    assert Release.objects.filter(name="dup").count() == 1
    assert len(stored_files(media_root)) == expected_rows
