"""Round trips: artifacts written by the real mender-artifact 3.9 parse back to what was asked for."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from deployments_app.artifact_format import (
    ArtifactError,
    ArtifactMeta,
    Payload,
    PayloadFile,
    depends_combinations,
    read_artifact,
)
from tests.deployments_app.artifact_format.conftest import (
    LONG_FILE_NAME,
    META_DATA,
    PAYLOAD_FILES,
    PAYLOAD_MTIME,
    Inputs,
)


def _read(path: Path) -> ArtifactMeta:
    with path.open("rb") as stream:
        return read_artifact(stream)


def _file(name: str, content: bytes | None = None) -> PayloadFile:
    content = PAYLOAD_FILES[name] if content is None else content
    return PayloadFile(
        name=name,
        size=len(content),
        checksum=hashlib.sha256(content).hexdigest(),
        date=PAYLOAD_MTIME,
    )


def test_read_artifact_module_image_gzip_with_all_header_fields(
    mender_artifacts: dict[str, Path],
) -> None:
    # when
    meta = _read(mender_artifacts["module_gzip"])

    # then
    payload = Payload(
        type="single-file",
        provides={
            "custom.key": "custom-value",
            "rootfs-image.single-file.version": "1.2.3",
        },
        depends={"custom.dep": "needed"},
        clears=["custom.*", "rootfs-image.single-file.*"],
        meta_data=META_DATA,
        files=[_file("payload.txt"), _file("second.bin")],
    )
    assert meta == ArtifactMeta(
        name="release-1",
        format="mender",
        version=3,
        device_types_compatible=["dev-a", "dev-b"],
        provides={
            "artifact_name": "release-1",
            "artifact_group": "group-a",
            "custom.key": "custom-value",
            "rootfs-image.single-file.version": "1.2.3",
        },
        depends={
            "device_type": ["dev-a", "dev-b"],
            "artifact_name": ["release-0"],
            "artifact_group": ["g1", "g2"],
            "custom.dep": "needed",
        },
        clears=["custom.*", "rootfs-image.single-file.*"],
        payloads=[payload],
        signed=False,
        size=mender_artifacts["module_gzip"].stat().st_size,
    )
    assert meta.payloads[0].files[0].date.utcoffset() is not None


def test_read_artifact_uncompressed_with_long_file_name_and_meta_data(
    mender_artifacts: dict[str, Path],
) -> None:
    meta = _read(mender_artifacts["module_none"])

    assert meta.name == "release-2"
    assert meta.device_types_compatible == ["probe-device", "other-device"]
    assert meta.provides == {
        "artifact_name": "release-2",
        "rootfs-image.probe-sandbox.version": "release-2",
    }
    assert meta.depends == {"device_type": ["probe-device", "other-device"]}
    assert meta.clears == ["rootfs-image.probe-sandbox.*"]
    assert meta.payloads == [
        Payload(
            type="probe-sandbox",
            provides={"rootfs-image.probe-sandbox.version": "release-2"},
            depends={},
            clears=["rootfs-image.probe-sandbox.*"],
            meta_data=META_DATA,
            files=[_file("payload.txt"), _file(LONG_FILE_NAME)],
        )
    ]
    assert meta.signed is False
    assert meta.size == mender_artifacts["module_none"].stat().st_size


def test_read_artifact_xz_compression(mender_artifacts: dict[str, Path]) -> None:
    meta = _read(mender_artifacts["module_xz"])

    assert meta.name == "release-xz"
    assert meta.payloads == [
        Payload(
            type="single-file",
            provides={"rootfs-image.single-file.version": "release-xz"},
            depends={},
            clears=["rootfs-image.single-file.*"],
            meta_data=None,
            files=[_file("second.bin")],
        )
    ]
    assert meta.size == mender_artifacts["module_xz"].stat().st_size


def test_read_artifact_software_name_and_filesystem_flags(
    mender_artifacts: dict[str, Path],
) -> None:
    meta = _read(mender_artifacts["module_software_name"])

    assert meta.provides == {
        "artifact_name": "release-sw",
        "vendor.firmware.version": "7.0",
    }
    assert meta.clears == []
    assert meta.payloads[0].clears == []


@pytest.mark.parametrize("name", ["signed_ecdsa", "signed_rsa"])
def test_read_artifact_reports_signed_artifacts(
    mender_artifacts: dict[str, Path], name: str
) -> None:
    meta = _read(mender_artifacts[name])

    assert meta.signed is True
    assert meta.payloads[0].files == [_file("payload.txt")]
    assert meta.size == mender_artifacts[name].stat().st_size


def test_read_artifact_unsigned_artifacts_are_not_signed(
    mender_artifacts: dict[str, Path],
) -> None:
    assert [
        _read(mender_artifacts[name]).signed
        for name in ("module_gzip", "module_none", "rootfs")
    ] == [
        False,
        False,
        False,
    ]


def test_read_artifact_rootfs_image(mender_artifacts: dict[str, Path]) -> None:
    # given
    image_checksum = hashlib.sha256(PAYLOAD_FILES["img.ext4"]).hexdigest()

    # when
    meta = _read(mender_artifacts["rootfs"])

    # then: type comes from header-info (type-info says ""), and the 0-byte meta-data means none
    assert meta == ArtifactMeta(
        name="rootfs-1",
        format="mender",
        version=3,
        device_types_compatible=["qemux86-64"],
        provides={
            "artifact_name": "rootfs-1",
            "rootfs-image.checksum": image_checksum,
            "rootfs-image.version": "rootfs-1",
        },
        depends={"device_type": ["qemux86-64"]},
        clears=["artifact_group", "rootfs_image_checksum", "rootfs-image.*"],
        payloads=[
            Payload(
                type="rootfs-image",
                provides={
                    "rootfs-image.checksum": image_checksum,
                    "rootfs-image.version": "rootfs-1",
                },
                depends={},
                clears=["artifact_group", "rootfs_image_checksum", "rootfs-image.*"],
                meta_data=None,
                files=[_file("img.ext4")],
            )
        ],
        signed=False,
        size=mender_artifacts["rootfs"].stat().st_size,
    )


def test_read_artifact_version_2_rootfs_image(
    mender_artifacts: dict[str, Path],
) -> None:
    meta = _read(mender_artifacts["rootfs_v2"])

    assert meta == ArtifactMeta(
        name="rootfs-v2",
        format="mender",
        version=2,
        device_types_compatible=["beaglebone", "qemux86-64"],
        provides={},
        depends={"device_type": ["beaglebone", "qemux86-64"]},
        clears=[],
        payloads=[
            Payload(type="rootfs-image", meta_data=None, files=[_file("img.ext4")])
        ],
        signed=False,
        size=mender_artifacts["rootfs_v2"].stat().st_size,
    )


def test_read_artifact_bootstrap_artifact_has_one_empty_payload(
    mender_artifacts: dict[str, Path],
) -> None:
    meta = _read(mender_artifacts["bootstrap"])

    assert meta.name == "bootstrap-1"
    assert meta.provides == {"artifact_name": "bootstrap-1"}
    assert meta.depends == {"device_type": ["dev-a"]}
    assert meta.clears == []
    assert meta.payloads == [
        Payload(type=None, provides={}, depends={}, clears=[], meta_data=None, files=[])
    ]


def test_read_artifact_module_image_without_files_has_empty_data_archive(
    mender_artifacts: dict[str, Path],
) -> None:
    meta = _read(mender_artifacts["module_no_files"])

    assert meta.payloads == [
        Payload(
            type="script",
            provides={"rootfs-image.script.version": "no-files-1"},
            depends={},
            clears=["rootfs-image.script.*"],
            meta_data=None,
            files=[],
        )
    ]


def test_read_artifact_merges_augmented_header(
    mender_artifacts: dict[str, Path],
) -> None:
    meta = _read(mender_artifacts["augmented"])

    # the augment header overrides type, adds provides/depends and merges meta-data key by key
    assert meta.payloads == [
        Payload(
            type="app-delta",
            provides={
                "rootfs-image.app.version": "augmented-1",
                "delta.provided": "yes",
            },
            depends={"delta.base": "release-0"},
            clears=["rootfs-image.app.*"],
            meta_data={"n": 2, "probe": "augmented", "list": ["a", 1], "extra": 3},
            files=[_file("payload.txt"), _file("aug.bin")],
        )
    ]
    assert meta.provides == {
        "artifact_name": "augmented-1",
        "rootfs-image.app.version": "augmented-1",
        "delta.provided": "yes",
    }
    assert meta.depends == {"device_type": ["dev-a"], "delta.base": "release-0"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "conflicting_provides",
            "conflicting artifact provides: 'artifact_name' is set more than once",
        ),
        (
            "conflicting_depends",
            "conflicting artifact depends: 'device_type' is set more than once",
        ),
    ],
)
def test_read_artifact_rejects_duplicate_keys_across_header_and_type_info(
    mender_artifacts: dict[str, Path], name: str, message: str
) -> None:
    with pytest.raises(ArtifactError) as excinfo:
        _read(mender_artifacts[name])

    assert str(excinfo.value) == message


def test_read_artifact_depends_expand_to_combinations(
    mender_artifacts: dict[str, Path],
) -> None:
    meta = _read(mender_artifacts["module_gzip"])

    assert depends_combinations(meta.depends) == [
        {
            "artifact_group": group,
            "artifact_name": "release-0",
            "custom.dep": "needed",
            "device_type": device,
        }
        for group in ("g1", "g2")
        for device in ("dev-a", "dev-b")
    ]


def test_read_artifact_counts_trailing_bytes_in_size(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    # given
    raw = artifact_bytes("module_gzip") + b"\x00" * 4096 + b"trailing"

    # when
    meta = read_artifact(io.BytesIO(raw))

    # then
    assert meta.size == len(raw)
    assert meta.name == "release-1"


class _ReadOnlyStream:
    """A non-seekable source that records how the reader consumes it."""

    def __init__(self, raw: bytes) -> None:
        self._buffer = io.BytesIO(raw)
        self.largest_read = 0
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "the reader must never ask for the whole stream"
        self.reads += 1
        self.largest_read = max(self.largest_read, size)
        return self._buffer.read(size)


def test_read_artifact_streams_large_payload_in_bounded_memory(
    mender_artifacts: dict[str, Path], artifact_inputs: Inputs
) -> None:
    # given
    path = mender_artifacts["big_none"]
    big = Path(artifact_inputs.path("big.bin")).read_bytes()
    stream = _ReadOnlyStream(path.read_bytes())

    # when
    tracemalloc.start()
    try:
        meta = read_artifact(stream)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # then
    assert meta.payloads[0].files == [_file("big.bin", big)]
    assert meta.size == path.stat().st_size
    assert stream.largest_read <= 1024 * 1024
    assert peak < 2 * 1024 * 1024  # the payload is 9 MiB; it must never be held whole
