"""Artifacts and releases management API: lists, filters, paging, get, edit, delete, download links."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from deployments_app.models import Artifact, ArtifactDependsKey, Release
from tests.deployments_app.conftest import BuiltArtifacts, stored_files

pytestmark = pytest.mark.django_db

ARTIFACTS_URL = "/api/management/v1/deployments/artifacts"
RELEASES_V1_URL = "/api/management/v1/deployments/deployments/releases"
RELEASES_V2_URL = "/api/management/v2/deployments/deployments/releases"


@pytest.fixture
def uploaded(
    built_artifacts: BuiltArtifacts, media_root: Path, upload_artifact_file: Any
) -> dict[str, str]:
    """Five artifacts in four releases: name -> id."""
    ids = {}
    for name, description in [
        ("module_gzip", "Gzip module"),
        ("module_none", "plain module"),
        ("rootfs", "Root filesystem"),
        ("dup_ab", "dup for a and b"),
        ("dup_c", "dup for c"),
    ]:
        response = upload_artifact_file(
            built_artifacts.bytes(name), description=description
        )
        assert response.status_code == 201, response.content
        ids[name] = response["Location"].rsplit("/", 1)[1]
    return ids


def _names(body: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in body]


def test_v1_list_is_an_unpaged_array_sorted_by_name(
    uploaded: dict[str, str], management_client: Any
) -> None:
    response = management_client.get(ARTIFACTS_URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert _names(body) == ["dup", "dup", "release-1", "release-2", "rootfs-1"]
    assert "X-Total-Count" not in response
    # mender-cli decodes every updates[].meta_data as an array.
    assert all(
        isinstance(u["meta_data"], list) for item in body for u in item["updates"]
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=RELEASE", ["release-1", "release-2"]),
        ("description=module", ["release-1", "release-2"]),
        ("device_type=qemux86", ["rootfs-1"]),
        ("device_type=DEV-C", ["dup"]),
        ("device_type=dev-b", ["dup", "release-1"]),
        ("name=release&device_type=probe", ["release-2"]),
        ("name=nothing-like-this", []),
    ],
)
def test_v1_list_filters_are_case_insensitive_substrings(
    uploaded: dict[str, str], management_client: Any, query: str, expected: list[str]
) -> None:
    response = management_client.get(f"{ARTIFACTS_URL}?{query}")

    assert response.status_code == 200
    assert _names(response.json()) == expected


def test_paged_list_has_total_count_and_links(
    uploaded: dict[str, str], management_client: Any
) -> None:
    response = management_client.get(
        f"{ARTIFACTS_URL}/list?page=2&per_page=2&sort=name:desc"
    )

    assert response.status_code == 200
    assert _names(response.json()) == ["release-1", "dup"]
    assert response["X-Total-Count"] == "5"
    links = response["Link"]
    assert (
        f'<{ARTIFACTS_URL}/list?sort=name%3Adesc&page=1&per_page=2>; rel="first"'
        in links
    )
    assert 'rel="prev"' in links
    assert (
        f'<{ARTIFACTS_URL}/list?sort=name%3Adesc&page=3&per_page=2>; rel="next"'
        in links
    )


def test_paged_list_sorts_by_modified(
    uploaded: dict[str, str], management_client: Any
) -> None:
    ascending = management_client.get(f"{ARTIFACTS_URL}/list?sort=modified:asc").json()
    descending = management_client.get(
        f"{ARTIFACTS_URL}/list?sort=modified:desc"
    ).json()

    assert [a["id"] for a in ascending] == list(uploaded.values())
    assert [a["id"] for a in descending] == list(reversed(uploaded.values()))


@pytest.mark.parametrize("query", ["sort=size:asc", "per_page=501", "page=0", "page=x"])
def test_paged_list_rejects_bad_parameters(management_client: Any, query: str) -> None:
    response = management_client.get(f"{ARTIFACTS_URL}/list?{query}")

    assert response.status_code == 400
    assert response.json()["error"]


def test_get_unknown_artifact_is_404_and_malformed_id_is_400(
    management_client: Any,
) -> None:
    missing = management_client.get(f"{ARTIFACTS_URL}/{uuid.uuid4()}")
    malformed = management_client.get(f"{ARTIFACTS_URL}/does-not-exist")

    assert missing.status_code == 404
    assert missing.json()["error"] == "artifact not found"
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "ID is not a valid UUID"


def test_put_description_is_204_and_changes_only_the_description(
    uploaded: dict[str, str], management_client: Any
) -> None:
    artifact_id = uploaded["rootfs"]
    before = management_client.get(f"{ARTIFACTS_URL}/{artifact_id}").json()

    response = management_client.put(
        f"{ARTIFACTS_URL}/{artifact_id}", {"description": "new words"}, format="json"
    )

    assert response.status_code == 204
    after = management_client.get(f"{ARTIFACTS_URL}/{artifact_id}").json()
    assert after["description"] == "new words"
    assert {k: v for k, v in after.items() if k not in ("description", "modified")} == {
        k: v for k, v in before.items() if k not in ("description", "modified")
    }


@pytest.mark.parametrize(
    ("body", "status_code"),
    [({"description": "x" * 4097}, 400), ({}, 400), ({"description": 5}, 204)],
)
def test_put_description_validation(
    uploaded: dict[str, str],
    management_client: Any,
    body: dict[str, Any],
    status_code: int,
) -> None:
    response = management_client.put(
        f"{ARTIFACTS_URL}/{uploaded['rootfs']}", body, format="json"
    )

    assert response.status_code == status_code


def test_put_unknown_artifact_is_404(management_client: Any) -> None:
    response = management_client.put(
        f"{ARTIFACTS_URL}/{uuid.uuid4()}", {"description": "x"}, format="json"
    )

    assert response.status_code == 404


def test_delete_removes_row_keys_release_and_file(
    uploaded: dict[str, str],
    management_client: Any,
    media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given
    artifact = Artifact.objects.get(pk=uploaded["module_gzip"])
    stored = Path(artifact.file.path)
    assert stored.exists()

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = management_client.delete(f"{ARTIFACTS_URL}/{artifact.id}")

    # then
    assert response.status_code == 204
    assert not Artifact.objects.filter(pk=artifact.id).exists()
    assert not ArtifactDependsKey.objects.filter(artifact_id=artifact.id).exists()
    assert not Release.objects.filter(name="release-1").exists()
    assert not stored.exists()
    assert len(stored_files(media_root)) == 4


def test_delete_one_artifact_of_a_release_keeps_the_release(
    uploaded: dict[str, str],
    management_client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = management_client.delete(f"{ARTIFACTS_URL}/{uploaded['dup_ab']}")

    assert response.status_code == 204
    assert list(Artifact.objects.filter(name="dup").values_list("id", flat=True)) == [
        uuid.UUID(uploaded["dup_c"])
    ]
    assert Release.objects.filter(name="dup").exists()


def test_delete_frees_the_name_and_depends_for_a_new_upload(
    uploaded: dict[str, str],
    management_client: Any,
    built_artifacts: BuiltArtifacts,
    upload_artifact_file: Any,
) -> None:
    assert upload_artifact_file(built_artifacts.bytes("dup_b")).status_code == 409

    assert (
        management_client.delete(f"{ARTIFACTS_URL}/{uploaded['dup_ab']}").status_code
        == 204
    )

    assert upload_artifact_file(built_artifacts.bytes("dup_b")).status_code == 201


def test_delete_of_an_artifact_an_active_deployment_needs_is_409(
    uploaded: dict[str, str], management_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployments_app.services import artifacts as services

    monkeypatch.setattr(
        services, "is_artifact_in_active_deployment", lambda *, artifact: True
    )

    response = management_client.delete(f"{ARTIFACTS_URL}/{uploaded['rootfs']}")

    assert response.status_code == 409
    assert Artifact.objects.filter(pk=uploaded["rootfs"]).exists()


@pytest.mark.parametrize(
    ("artifact_id", "status_code"), [(str(uuid.uuid4()), 404), ("does-not-exist", 400)]
)
def test_delete_unknown_or_malformed_id(
    management_client: Any, artifact_id: str, status_code: int
) -> None:
    response = management_client.delete(f"{ARTIFACTS_URL}/{artifact_id}")

    assert response.status_code == status_code
    assert response.json()["error"]


def test_download_link_is_absolute_signed_and_expires_after_the_ttl(
    uploaded: dict[str, str], management_client: Any, settings: Any
) -> None:
    settings.FLOTILLA_PUBLIC_URL = "https://ota.example.com"
    artifact_id = uploaded["module_none"]

    response = management_client.get(f"{ARTIFACTS_URL}/{artifact_id}/download")

    assert response.status_code == 200
    body = response.json()
    url = urlparse(body["uri"])
    assert (url.scheme, url.netloc) == ("https", "ota.example.com")
    assert url.path == f"/api/devices/v1/deployments/download/artifacts/{artifact_id}"
    query = parse_qs(url.query)
    assert query["x-men-expire"] == [body["expire"]]
    assert query["x-men-signature"][0]
    expire = dt.datetime.fromisoformat(body["expire"])
    remaining = expire - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23, minutes=59) < remaining <= dt.timedelta(hours=24)


def test_download_link_uses_the_request_host_without_public_url(
    uploaded: dict[str, str], management_client: Any, settings: Any
) -> None:
    settings.FLOTILLA_PUBLIC_URL = ""

    body = management_client.get(
        f"{ARTIFACTS_URL}/{uploaded['rootfs']}/download"
    ).json()

    assert body["uri"].startswith(
        "http://testserver/api/devices/v1/deployments/download/artifacts/"
    )


def test_download_link_of_unknown_artifact_is_404(management_client: Any) -> None:
    assert (
        management_client.get(f"{ARTIFACTS_URL}/{uuid.uuid4()}/download").status_code
        == 404
    )


def test_management_endpoints_need_a_user_token(api_client: Any) -> None:
    assert api_client.get(ARTIFACTS_URL).status_code == 401
    assert api_client.get(RELEASES_V2_URL).status_code == 401


# ------------------------------------------------------------------ releases


def test_v1_releases_use_legacy_capitalised_keys(
    uploaded: dict[str, str], management_client: Any
) -> None:
    response = management_client.get(RELEASES_V1_URL)

    assert response.status_code == 200
    body = response.json()
    assert [r["Name"] for r in body] == ["dup", "release-1", "release-2", "rootfs-1"]
    dup = body[0]
    assert set(dup) == {
        "Name",
        "Artifacts",
        "ArtifactsCount",
        "Modified",
        "tags",
        "notes",
    }
    assert dup["ArtifactsCount"] == 2
    assert sorted(a["id"] for a in dup["Artifacts"]) == sorted(
        [uploaded["dup_ab"], uploaded["dup_c"]]
    )
    assert dup["Modified"].endswith("Z")


def test_v1_releases_paged_list(
    uploaded: dict[str, str], management_client: Any
) -> None:
    response = management_client.get(
        f"{RELEASES_V1_URL}/list?per_page=1&sort=artifacts_count:desc"
    )

    assert response.status_code == 200
    assert [r["Name"] for r in response.json()] == ["dup"]
    assert response["X-Total-Count"] == "4"


def test_v2_releases_use_lowercase_keys_and_paging(
    uploaded: dict[str, str], management_client: Any
) -> None:
    response = management_client.get(
        f"{RELEASES_V2_URL}?page=1&per_page=3&sort=name:desc"
    )

    assert response.status_code == 200
    body = response.json()
    assert [r["name"] for r in body] == ["rootfs-1", "release-2", "release-1"]
    assert set(body[0]) == {
        "name",
        "modified",
        "artifacts",
        "artifacts_count",
        "tags",
        "notes",
    }
    assert body[0]["artifacts"][0]["id"] == uploaded["rootfs"]
    assert response["X-Total-Count"] == "4"
    assert 'rel="next"' in response["Link"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=REL", ["release-1", "release-2"]),
        ("name=lease", []),  # name is a prefix
        ("device_type=dev-c", ["dup"]),
        ("update_type=rootfs-image", ["rootfs-1"]),
        ("update_type=single-file", ["dup", "release-1"]),
        ("description=filesystem", ["rootfs-1"]),
    ],
)
def test_v2_release_filters(
    uploaded: dict[str, str], management_client: Any, query: str, expected: list[str]
) -> None:
    response = management_client.get(f"{RELEASES_V2_URL}?{query}")

    assert response.status_code == 200
    assert [r["name"] for r in response.json()] == expected


def test_v2_release_notes_and_tags(
    uploaded: dict[str, str], management_client: Any
) -> None:
    notes = management_client.patch(
        f"{RELEASES_V2_URL}/release-1", {"notes": "hello"}, format="json"
    )
    tags = management_client.put(
        f"{RELEASES_V2_URL}/release-1/tags", ["Stable", "v1.0", "stable"], format="json"
    )

    assert (notes.status_code, tags.status_code) == (204, 204)
    release = management_client.get(f"{RELEASES_V2_URL}/release-1").json()
    assert (release["notes"], release["tags"]) == ("hello", ["stable", "v1.0"])
    assert [
        r["name"] for r in management_client.get(f"{RELEASES_V2_URL}?tag=stable").json()
    ] == ["release-1"]
    assert management_client.get(
        "/api/management/v2/deployments/releases/all/tags"
    ).json() == ["stable", "v1.0"]
    assert management_client.get(
        "/api/management/v2/deployments/releases/all/types"
    ).json() == [
        "probe-sandbox",
        "rootfs-image",
        "single-file",
    ]


@pytest.mark.parametrize(
    "tags", [["bad tag"], [f"t{i}" for i in range(21)], "notalist"]
)
def test_v2_release_tags_validation(
    uploaded: dict[str, str], management_client: Any, tags: Any
) -> None:
    response = management_client.put(
        f"{RELEASES_V2_URL}/release-1/tags", tags, format="json"
    )

    assert response.status_code == 400


def test_v2_release_of_unknown_name_is_404(management_client: Any) -> None:
    assert management_client.get(f"{RELEASES_V2_URL}/nope").status_code == 404
    assert (
        management_client.patch(
            f"{RELEASES_V2_URL}/nope", {"notes": "x"}, format="json"
        ).status_code
        == 404
    )


def test_v2_delete_releases_deletes_all_their_artifacts(
    uploaded: dict[str, str],
    management_client: Any,
    media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = management_client.delete(f"{RELEASES_V2_URL}?name=dup&name=rootfs-1")

    assert response.status_code == 204
    assert sorted(Artifact.objects.values_list("name", flat=True)) == [
        "release-1",
        "release-2",
    ]
    assert sorted(Release.objects.values_list("name", flat=True)) == [
        "release-1",
        "release-2",
    ]
    assert len(stored_files(media_root)) == 2
