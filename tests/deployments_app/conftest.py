"""Artifacts written by the real mender-artifact 3.9 for the artifact API tests (built once per session).

Also helpers that take a good artifact apart and put it back together with one defect, keeping
the manifest checksums consistent where the defect is meant to be something else.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

MENDER_ARTIFACT = shutil.which("mender-artifact") or "/usr/bin/mender-artifact"
INPUT_MTIME = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
META_DATA = {"n": 2, "probe": "meta", "list": ["a", 1]}

INPUT_FILES: dict[str, bytes] = {
    "payload.txt": b"hello from flotilla\n",
    "second.bin": bytes(range(256)) * 40,
    "rootfs.ext4": b"\x00" * 4096 + b"ext4-ish" * 1024,
    # Random, so a flipped byte or a wrong range can never go unnoticed.
    "random.bin": b"",
}

# name -> mender-artifact "write" arguments; {file} is replaced by the input file's path.
ARTIFACT_RECIPES: dict[str, list[str]] = {
    "module_gzip": [
        "module-image", "-T", "single-file", "-n", "release-1", "-t", "dev-a", "-t", "dev-b",
        "-f", "{payload.txt}", "-f", "{second.bin}", "--compression", "gzip",
        "--meta-data", "{meta.json}", "-p", "custom.key:custom-value", "-d", "custom.dep:needed",
    ],
    "module_none": [
        "module-image", "-T", "probe-sandbox", "-n", "release-2", "-t", "probe-device",
        "-t", "other-device", "-f", "{payload.txt}", "--compression", "none",
        "--meta-data", "{meta.json}",
    ],
    "module_xz": [
        "module-image", "-T", "single-file", "-n", "release-xz", "-t", "dev-a",
        "-f", "{second.bin}", "--compression", "lzma",
    ],
    "rootfs": [
        "rootfs-image", "-t", "qemux86-64", "-t", "raspberrypi4", "-n", "rootfs-1",
        "-f", "{rootfs.ext4}", "--no-progress",
    ],
    "signed_ecdsa": [
        "module-image", "-T", "single-file", "-n", "signed-ec", "-t", "dev-a",
        "-f", "{payload.txt}", "-k", "{ec.pem}",
    ],
    "random_none": [
        "module-image", "-T", "single-file", "-n", "random-1", "-t", "dev-a",
        "-f", "{random.bin}", "--compression", "none",
    ],
    # Uniqueness (§4.12): same name, overlapping / disjoint device types.
    "dup_ab": [
        "module-image", "-T", "single-file", "-n", "dup", "-t", "dev-a", "-t", "dev-b",
        "-f", "{payload.txt}",
    ],
    "dup_b": [
        "module-image", "-T", "single-file", "-n", "dup", "-t", "dev-b", "-f", "{second.bin}",
    ],
    "dup_c": [
        "module-image", "-T", "single-file", "-n", "dup", "-t", "dev-c", "-f", "{second.bin}",
    ],
}  # fmt: skip


@dataclass(frozen=True)
class BuiltArtifacts:
    """The session's artifacts: name -> path of the `.mender` file, plus the input files."""

    paths: dict[str, Path]
    inputs: Path

    def path(self, name: str) -> Path:
        return self.paths[name]

    def bytes(self, name: str) -> bytes:
        return self.paths[name].read_bytes()


@pytest.fixture(scope="session")
def mender_artifact_tool() -> str:
    if not os.access(MENDER_ARTIFACT, os.X_OK):
        pytest.skip(
            "mender-artifact 3.9 is not installed (apt-get install mender-artifact)"
        )
    return MENDER_ARTIFACT


def _write_inputs(directory: Path) -> None:
    files = dict(INPUT_FILES)
    files["random.bin"] = os.urandom(64 * 1024 + 77)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    (directory / "meta.json").write_text(json.dumps(META_DATA))
    timestamp = INPUT_MTIME.timestamp()
    for path in directory.iterdir():
        os.utime(path, (timestamp, timestamp))
    subprocess.run(
        [
            "openssl",
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            directory / "ec.pem",
        ],
        check=True,
        capture_output=True,
    )


def write_mender_artifact(
    tool: str, inputs: Path, recipe: list[str], output: Path
) -> Path:
    """Run `mender-artifact write` with a recipe whose `{file}` arguments name files in `inputs`."""
    args = [
        str(inputs / arg[1:-1]) if arg.startswith("{") and arg.endswith("}") else arg
        for arg in recipe
    ]
    subprocess.run(
        [tool, "write", *args, "-o", str(output)], check=True, capture_output=True
    )
    return output


@pytest.fixture(scope="session")
def built_artifacts(
    mender_artifact_tool: str, tmp_path_factory: pytest.TempPathFactory
) -> BuiltArtifacts:
    inputs = tmp_path_factory.mktemp("artifact-api-inputs")
    _write_inputs(inputs)
    output_dir = tmp_path_factory.mktemp("artifact-api-artifacts")
    paths = {
        name: write_mender_artifact(
            mender_artifact_tool, inputs, recipe, output_dir / f"{name}.mender"
        )
        for name, recipe in ARTIFACT_RECIPES.items()
    }
    return BuiltArtifacts(paths=paths, inputs=inputs)


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    """A fresh MEDIA_ROOT for the test (artifact files are stored under it)."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def stored_files(root: Path) -> list[Path]:
    """Every regular file under a directory (to prove nothing was left behind)."""
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture
def upload_artifact_file(management_client: Any) -> Callable[..., Any]:
    """POST a file to the upload endpoint like mender-cli does (size, description, artifact last)."""

    def upload(
        content: bytes,
        *,
        description: str = "",
        size: int | None = None,
        filename: str = "a.mender",
    ) -> Any:
        body: dict[str, Any] = {
            "size": str(len(content) if size is None else size),
            "description": description,
        }
        upload_file = io.BytesIO(content)
        upload_file.name = filename
        body["artifact"] = upload_file
        return management_client.post(
            "/api/management/v1/deployments/artifacts", body, format="multipart"
        )

    return upload


# ------------------------------------------------------------------ taking artifacts apart


@dataclass
class Member:
    info: tarfile.TarInfo
    data: bytes


def read_members(content: bytes) -> list[Member]:
    members = []
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as archive:
        for info in archive:
            extracted = archive.extractfile(info)
            members.append(
                Member(info=info, data=extracted.read() if extracted else b"")
            )
    return members


def write_members(
    members: list[Member], *, format: int = tarfile.USTAR_FORMAT
) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=format) as archive:
        for member in members:
            info = tarfile.TarInfo(member.info.name)
            info.size = len(member.data)
            info.mode = member.info.mode
            info.mtime = member.info.mtime
            info.type = member.info.type
            archive.addfile(info, io.BytesIO(member.data))
    return out.getvalue()


def member(members: list[Member], name: str) -> Member:
    return next(m for m in members if m.info.name == name)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def set_manifest_entry(
    members: list[Member], path: str, checksum: str, *, rename_from: str | None = None
) -> None:
    """Rewrite one line of `manifest` (optionally replacing the line for another path)."""
    manifest = member(members, "manifest")
    lines = []
    for line in manifest.data.decode().splitlines():
        digest, _, entry = line.partition("  ")
        if entry in (path, rename_from):
            lines.append(f"{checksum}  {path}")
        else:
            lines.append(line)
    manifest.data = ("\n".join(lines) + "\n").encode()


def tar_bytes(files: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(INPUT_MTIME.timestamp())
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def replace_header(
    members: list[Member], rewrite: Callable[[list[Member]], list[Member]]
) -> None:
    """Rewrite the (gzip) header archive and fix its checksum in the manifest."""
    header = member(members, "header.tar.gz")
    inner = read_members(gzip.decompress(header.data))
    header.data = gzip.compress(
        write_members(rewrite(inner), format=tarfile.GNU_FORMAT)
    )
    set_manifest_entry(members, "header.tar.gz", sha256(header.data))


@pytest.fixture
def cleanup_stored_artifacts() -> Iterator[None]:
    """Delete artifact files a live-server test stored under the shared MEDIA_ROOT."""
    from deployments_app.models import Artifact

    yield
    from deployments_app.models.artifacts import artifact_storage

    for name in Artifact.objects.values_list("file", flat=True):
        artifact_storage().delete(name)
