"""Damage Go's archive/tar and mender-artifact's signature reader refuse, refused here too:
corrupt headers after the first member, cut-off or dirty end-of-archive blocks, and a
manifest.sig that no key could verify."""

from __future__ import annotations

import base64
import io
import tarfile
from collections.abc import Callable

import pytest

from deployments_app.artifact_format import ArtifactError, read_artifact
from deployments_app.artifact_format.documents import check_manifest_signature

BLOCK = 512


def _end_of_members(content: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as archive:
        last = archive.getmembers()[-1]
    return last.offset_data + -(-last.size // BLOCK) * BLOCK


def _second_member_header(content: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as archive:
        return archive.getmembers()[1].offset


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        # the reproducer: `head -c` into the end-of-archive blocks
        (lambda c, end: c[: end + 700], "truncated inside the end-of-archive blocks"),
        (
            lambda c, end: c[: end + 2 * BLOCK - 1],
            "truncated inside the end-of-archive",
        ),
        # a non-zero block after the first end-of-archive block
        (
            lambda c, end: c[: end + BLOCK + 3] + b"\x01" + c[end + BLOCK + 4 :],
            "invalid tar header after an end-of-archive block",
        ),
        # a bit flip in an end-of-archive block makes it a corrupt header
        (lambda c, end: c[: end + 10] + b"\x08" + c[end + 11 :], "invalid tar header"),
    ],
)
def test_damaged_end_of_archive_is_refused(
    artifact_bytes: Callable[[str], bytes],
    damage: Callable[[bytes, int], bytes],
    message: str,
) -> None:
    content = artifact_bytes("module_gzip")

    with pytest.raises(ArtifactError, match=message):
        read_artifact(io.BytesIO(damage(content, _end_of_members(content))))


def test_a_corrupt_header_after_the_first_member_is_not_the_end_of_the_archive(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    # tarfile alone would stop at the corrupt "manifest" header and call the archive complete
    content = bytearray(artifact_bytes("module_none"))
    content[_second_member_header(bytes(content)) + 3] ^= 0x20

    with pytest.raises(ArtifactError, match=r"invalid tar header \(bad checksum\)"):
        read_artifact(io.BytesIO(bytes(content)))


def test_end_of_archive_at_eof_after_one_or_no_zero_block_is_accepted(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    # Go's archive/tar takes a clean EOF there for the end, and so does mender-artifact.
    content = artifact_bytes("module_gzip")
    end = _end_of_members(content)

    for cut in (end, end + BLOCK):
        assert read_artifact(io.BytesIO(content[:cut])).name == "release-1"


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (b"", "a 0-byte signature fits no ECDSA or RSA key"),
        (b"\x93\x00garbage", "manifest.sig is not valid base64"),
        (b"not base64!", "manifest.sig is not valid base64"),
        (base64.b64encode(bytes(64))[:-2], "manifest.sig is not valid base64"),
        (base64.b64encode(bytes(10)), "a 10-byte signature fits no ECDSA or RSA key"),
        (base64.b64encode(bytes(63)), "a 63-byte signature fits no ECDSA or RSA key"),
        (
            base64.b64encode(bytes(4096)),
            "a 4096-byte signature fits no ECDSA or RSA key",
        ),
    ],
)
def test_malformed_manifest_signature_is_refused(
    signature: bytes, message: str
) -> None:
    with pytest.raises(ArtifactError, match=message):
        check_manifest_signature(signature)


@pytest.mark.parametrize("length", [64, 96, 132, 128, 256, 384, 512])
def test_signatures_of_real_key_sizes_are_accepted(length: int) -> None:
    encoded = base64.b64encode(bytes(range(256)) * 2)[: 4 * -(-length // 3)]
    signature = base64.b64encode(base64.b64decode(encoded)[:length])

    check_manifest_signature(signature + b"\n")


@pytest.mark.parametrize("name", ["signed_ecdsa", "signed_rsa"])
def test_real_signed_artifacts_are_accepted(
    artifact_bytes: Callable[[str], bytes], name: str
) -> None:
    assert read_artifact(io.BytesIO(artifact_bytes(name))).signed is True
