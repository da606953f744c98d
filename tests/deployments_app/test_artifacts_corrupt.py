"""Corrupted uploads are refused with 400 and leave neither a row nor a stored file (table-driven)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployments_app.models import Artifact, ArtifactDependsKey, Release
from tests.deployments_app.conftest import (
    BuiltArtifacts,
    Member,
    member,
    read_members,
    replace_header,
    set_manifest_entry,
    sha256,
    stored_files,
    write_members,
)

pytestmark = pytest.mark.django_db


def _truncated(artifacts: BuiltArtifacts) -> bytes:
    content = artifacts.bytes("module_gzip")
    return content[: len(content) // 2]


def _truncated_inside_payload(artifacts: BuiltArtifacts) -> bytes:
    content = artifacts.bytes("random_none")
    return content[: len(content) - 8 * 1024]


def _flipped_payload_byte(artifacts: BuiltArtifacts) -> bytes:
    content = bytearray(artifacts.bytes("random_none"))
    payload = (artifacts.inputs / "random.bin").read_bytes()
    offset = bytes(content).index(payload[:4096]) + 1000
    content[offset] ^= 0x01
    return bytes(content)


def _wrong_member_order(artifacts: BuiltArtifacts) -> bytes:
    members = read_members(artifacts.bytes("module_gzip"))
    names = [m.info.name for m in members]
    assert names[:3] == ["version", "manifest", "header.tar.gz"]
    members[1], members[2] = members[2], members[1]
    return write_members(members)


def _data_before_header(artifacts: BuiltArtifacts) -> bytes:
    members = read_members(artifacts.bytes("module_gzip"))
    header = member(members, "header.tar.gz")
    members.remove(header)
    members.append(header)
    return write_members(members)


def _bad_header_info_json(artifacts: BuiltArtifacts) -> bytes:
    members = read_members(artifacts.bytes("module_gzip"))

    def rewrite(inner: list[Member]) -> list[Member]:
        member(
            inner, "header-info"
        ).data = b'{"payloads": [{"type": "single-file"}], "artifact_provides": '
        return inner

    replace_header(members, rewrite)
    return write_members(members)


def _header_info_unknown_key(artifacts: BuiltArtifacts) -> bytes:
    members = read_members(artifacts.bytes("module_gzip"))

    def rewrite(inner: list[Member]) -> list[Member]:
        info = member(inner, "header-info")
        document = json.loads(info.data)
        document["surprise"] = True
        info.data = json.dumps(document).encode()
        return inner

    replace_header(members, rewrite)
    return write_members(members)


def _unknown_version(artifacts: BuiltArtifacts) -> bytes:
    members = read_members(artifacts.bytes("module_gzip"))
    version = member(members, "version")
    version.data = b'{"format":"mender","version":4}'
    set_manifest_entry(members, "version", sha256(version.data))
    return write_members(members)


def _not_a_tar(artifacts: BuiltArtifacts) -> bytes:
    return b"this is not a mender artifact\n" * 400


def _empty(artifacts: BuiltArtifacts) -> bytes:
    return b""


def _header_bomb(artifacts: BuiltArtifacts) -> bytes:
    """A header that decompresses to more than 10 MiB (a state script of zeros), checksums intact."""
    members = read_members(artifacts.bytes("module_gzip"))

    def rewrite(inner: list[Member]) -> list[Member]:
        info = tarfile.TarInfo("scripts/ArtifactInstall_Enter_01")
        bomb = Member(info=info, data=b"\x00" * (11 * 1024 * 1024))
        info.size = len(bomb.data)
        info.mode = 0o755
        return [inner[0], bomb, *inner[1:]]

    replace_header(members, rewrite)
    return write_members(members)


def _dotdot_payload_name(artifacts: BuiltArtifacts) -> bytes:
    """A payload file named ../payload.txt, listed as such in the manifest."""
    members = read_members(artifacts.bytes("module_none"))
    data = member(members, "data/0000.tar")
    inner = read_members(data.data)
    assert [m.info.name for m in inner] == ["payload.txt"]
    inner[0].info.name = "../payload.txt"
    data.data = write_members(inner)
    set_manifest_entry(
        members,
        "data/0000/../payload.txt",
        sha256(inner[0].data),
        rename_from="data/0000/payload.txt",
    )
    return write_members(members)


def _dotdot_outer_member(artifacts: BuiltArtifacts) -> bytes:
    members = read_members(artifacts.bytes("module_gzip"))
    members[-1].info.name = "data/../../0000.tar.gz"
    return write_members(members, format=tarfile.GNU_FORMAT)


def _unlisted_payload_file(artifacts: BuiltArtifacts) -> bytes:
    members = read_members(artifacts.bytes("module_none"))
    data = member(members, "data/0000.tar")
    inner = read_members(data.data)
    extra = tarfile.TarInfo("extra.txt")
    inner.append(Member(info=extra, data=b"not in the manifest\n"))
    extra.size = len(inner[-1].data)
    data.data = write_members(inner)
    return write_members(members)


def _header_checksum_mismatch(artifacts: BuiltArtifacts) -> bytes:
    members = read_members(artifacts.bytes("module_gzip"))
    header = member(members, "header.tar.gz")
    inner = gzip.decompress(header.data)
    header.data = gzip.compress(
        inner, mtime=12345
    )  # same content, other bytes: checksum differs
    return write_members(members)


def _compressed_outer_tar(artifacts: BuiltArtifacts) -> bytes:
    return gzip.compress(artifacts.bytes("module_gzip"))


# name -> (how to break a good artifact, a fragment of the reason the 400 must give)
CORRUPTIONS: dict[str, tuple[Callable[[BuiltArtifacts], bytes], str]] = {
    "truncated": (_truncated, "unexpected end of data"),
    "truncated_inside_payload": (_truncated_inside_payload, "unexpected end of data"),
    "flipped_payload_byte": (
        _flipped_payload_byte,
        "invalid checksum for data/0000/random.bin",
    ),
    "wrong_member_order": (_wrong_member_order, "header.tar.gz"),
    "data_before_header": (_data_before_header, "wrong artifact structure"),
    "bad_header_info_json": (_bad_header_info_json, "header-info is not valid JSON"),
    "header_info_unknown_key": (_header_info_unknown_key, "unknown field(s) surprise"),
    "unknown_version": (_unknown_version, "unsupported artifact format version 4"),
    "not_a_tar": (_not_a_tar, "not a Mender artifact"),
    "empty_file": (_empty, "not a Mender artifact"),
    "header_decompresses_over_10_mib": (_header_bomb, "larger than 10485760 bytes"),
    "dotdot_payload_name": (_dotdot_payload_name, "unsafe member name"),
    "dotdot_outer_member": (_dotdot_outer_member, "unsafe member name"),
    "unlisted_payload_file": (_unlisted_payload_file, "not listed in the manifest"),
    "header_checksum_mismatch": (
        _header_checksum_mismatch,
        "invalid checksum for header.tar.gz",
    ),
    "gzip_compressed_outer_tar": (_compressed_outer_tar, "not a Mender artifact"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_upload_is_400_and_stores_nothing(
    corruption: str,
    built_artifacts: BuiltArtifacts,
    media_root: Path,
    upload_artifact_file: Any,
    tmp_path: Path,
) -> None:
    # given
    build, reason = CORRUPTIONS[corruption]
    content = build(built_artifacts)

    # when
    response = upload_artifact_file(content, description=corruption)

    # then
    assert response.status_code == 400, response.content
    body = response.json()
    assert reason in body["error"]
    assert body["request_id"]
    assert Artifact.objects.count() == 0
    assert Release.objects.count() == 0
    assert ArtifactDependsKey.objects.count() == 0
    assert stored_files(media_root) == []


def test_every_corruption_starts_from_an_artifact_that_uploads(
    built_artifacts: BuiltArtifacts, media_root: Path, upload_artifact_file: Any
) -> None:
    """The unmodified sources are accepted, so each 400 above is caused by its defect alone."""
    for name in ("module_gzip", "module_none", "random_none"):
        assert upload_artifact_file(built_artifacts.bytes(name)).status_code == 201


def test_rebuilt_but_unmodified_artifact_still_uploads(
    built_artifacts: BuiltArtifacts, media_root: Path, upload_artifact_file: Any
) -> None:
    """The take-apart helpers alone do not break an artifact."""
    members = read_members(built_artifacts.bytes("module_gzip"))
    replace_header(members, lambda inner: inner)

    response = upload_artifact_file(write_members(members))

    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "corruption",
    ["truncated", "flipped_payload_byte", "header_decompresses_over_10_mib"],
)
def test_service_refuses_corruption_without_side_effects(
    corruption: str, built_artifacts: BuiltArtifacts, media_root: Path
) -> None:
    from deployments_app.exceptions import ArtifactInvalid
    from deployments_app.services.artifacts import upload_artifact

    with pytest.raises(ArtifactInvalid):
        upload_artifact(file=io.BytesIO(CORRUPTIONS[corruption][0](built_artifacts)))

    assert Artifact.objects.count() == 0
    assert stored_files(media_root) == []
