"""Artifact headers obey the input policy: names fit their columns, no NUL or lone surrogate is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployments_app.models import Artifact, Release
from tests.api_surface import table_fingerprint
from tests.deployments_app.conftest import (
    BuiltArtifacts,
    Member,
    member,
    read_members,
    replace_header,
    stored_files,
    write_members,
    write_mender_artifact,
)

pytestmark = pytest.mark.django_db


def _with_header_info(artifacts: BuiltArtifacts, edit: Any) -> bytes:
    members = read_members(artifacts.bytes("module_gzip"))

    def rewrite(inner: list[Member]) -> list[Member]:
        info = member(inner, "header-info")
        document = json.loads(info.data)
        edit(document)
        # ensure_ascii keeps a lone surrogate as the escape \ud800, as an attacker would write it
        info.data = json.dumps(document).encode()
        return inner

    replace_header(members, rewrite)
    return write_members(members)


def _set_name(name: str) -> Any:
    def edit(document: dict[str, Any]) -> None:
        document["artifact_provides"]["artifact_name"] = name

    return edit


def _set_device_type(device_type: str) -> Any:
    def edit(document: dict[str, Any]) -> None:
        document["artifact_depends"]["device_type"] = [device_type]

    return edit


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_set_name("a\u0000b"), "NUL character"),
        (_set_name("a\ud800b"), "lone surrogate"),
        (_set_name("n" * 4097), "longer than 4096 characters"),
        (_set_device_type("dev\u0000"), "NUL character"),
    ],
    ids=["nul-name", "surrogate-name", "long-name", "nul-device-type"],
)
def test_header_info_with_unstorable_values_is_400(
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    edit: Any,
    reason: str,
) -> None:
    # given
    content = _with_header_info(built_artifacts, edit)
    before = table_fingerprint()

    # when
    response = upload_artifact_file(content)

    # then
    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]
    assert table_fingerprint() == before
    assert stored_files(media_root) == []


def test_artifact_named_by_mender_artifact_over_4096_characters_is_400(
    built_artifacts: BuiltArtifacts,
    mender_artifact_tool: str,
    media_root: Path,
    upload_artifact_file: Any,
    tmp_path: Path,
) -> None:
    # given: the tool itself accepts the name
    path = write_mender_artifact(
        mender_artifact_tool,
        built_artifacts.inputs,
        ["module-image", "-T", "single-file", "-n", "r" * 4097, "-t", "dev-a"]
        + ["-f", "{payload.txt}"],
        tmp_path / "long.mender",
    )

    # when
    response = upload_artifact_file(path.read_bytes())

    # then
    assert response.status_code == 400, response.content
    assert "longer than 4096 characters" in response.json()["error"]
    assert Artifact.objects.count() == 0
    assert Release.objects.count() == 0
    assert stored_files(media_root) == []


def test_artifact_named_with_4096_characters_is_accepted(
    built_artifacts: BuiltArtifacts, media_root: Path, upload_artifact_file: Any
) -> None:
    content = _with_header_info(built_artifacts, _set_name("r" * 4096))

    response = upload_artifact_file(content)

    assert response.status_code == 201, response.content
    assert Artifact.objects.get().name == "r" * 4096
