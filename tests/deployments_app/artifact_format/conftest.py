"""Real artifacts written by the mender-artifact 3.9 binary, built once per test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

MENDER_ARTIFACT = shutil.which("mender-artifact") or "/usr/bin/mender-artifact"

# Fixed mtime for every input file, so PayloadFile.date can be asserted exactly.
PAYLOAD_MTIME = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

LONG_FILE_NAME = (
    "L" * 120 + ".bin"
)  # > 100 characters: needs a PAX/GNU long-name header

PAYLOAD_FILES: dict[str, bytes] = {
    "payload.txt": b"hello from flotilla\n",
    "second.bin": bytes(range(256)) * 40,
    LONG_FILE_NAME: b"long name\n",
    "img.ext4": b"\x00" * 4096 + b"ext4-ish" * 512,
    "aug.bin": b"augmented payload\n",
    "big.bin": b"",  # filled in by the fixture: random, larger than any buffer the reader uses
}
META_DATA = {"n": 2, "probe": "meta", "list": ["a", 1]}
AUGMENT_META_DATA = {"probe": "augmented", "extra": 3}


@dataclass(frozen=True)
class Inputs:
    directory: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)


@pytest.fixture(scope="session")
def mender_artifact_binary() -> str:
    if not os.access(MENDER_ARTIFACT, os.X_OK):
        pytest.skip(
            "mender-artifact 3.9 is not installed (apt-get install mender-artifact)"
        )
    return MENDER_ARTIFACT


@pytest.fixture(scope="session")
def artifact_inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    directory = tmp_path_factory.mktemp("artifact-inputs")
    files = dict(PAYLOAD_FILES)
    files["big.bin"] = os.urandom(9 * 1024 * 1024 + 123)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    (directory / "meta.json").write_text(json.dumps(META_DATA))
    (directory / "augment-meta.json").write_text(json.dumps(AUGMENT_META_DATA))
    (directory / "ArtifactInstall_Enter_01").write_text("#!/bin/sh\nexit 0\n")
    (directory / "ArtifactCommit_Leave_50_notify").write_text("#!/bin/sh\nexit 0\n")
    timestamp = PAYLOAD_MTIME.timestamp()
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
    # mender-artifact 3.9 only reads PKCS#1 RSA keys; OpenSSL 3 writes PKCS#8 unless told otherwise.
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", directory / "rsa.pem", "2048"],
        check=True,
        capture_output=True,
    )
    return Inputs(directory)


# name -> mender-artifact arguments after "write"; {name} is replaced by an input file path.
ARTIFACT_RECIPES: dict[str, list[str]] = {
    "module_gzip": [
        "module-image", "-T", "single-file", "-n", "release-1", "-t", "dev-a", "-t", "dev-b",
        "-f", "{payload.txt}", "-f", "{second.bin}", "--compression", "gzip",
        "--meta-data", "{meta.json}",
        "-p", "custom.key:custom-value", "-d", "custom.dep:needed",
        "--software-version", "1.2.3", "-g", "group-a", "-G", "g1", "-G", "g2", "-N", "release-0",
        "--clears-provides", "custom.*",
        "-s", "{ArtifactInstall_Enter_01}", "-s", "{ArtifactCommit_Leave_50_notify}",
    ],
    "module_none": [
        "module-image", "-T", "probe-sandbox", "-n", "release-2", "-t", "probe-device", "-t", "other-device",
        "-f", "{payload.txt}", "-f", "{" + LONG_FILE_NAME + "}", "--compression", "none",
        "--meta-data", "{meta.json}",
    ],
    "module_xz": [
        "module-image", "-T", "single-file", "-n", "release-xz", "-t", "dev-a",
        "-f", "{second.bin}", "--compression", "lzma",
    ],
    "module_software_name": [
        "module-image", "-T", "app", "-n", "release-sw", "-t", "dev-a", "-f", "{payload.txt}",
        "--software-name", "firmware", "--software-filesystem", "vendor", "--software-version", "7.0",
        "--no-default-clears-provides",
    ],
    "signed_ecdsa": [
        "module-image", "-T", "single-file", "-n", "signed-ec", "-t", "dev-a", "-f", "{payload.txt}",
        "-k", "{ec.pem}",
    ],
    "signed_rsa": [
        "module-image", "-T", "single-file", "-n", "signed-rsa", "-t", "dev-a", "-f", "{payload.txt}",
        "-k", "{rsa.pem}", "--compression", "none",
    ],
    "rootfs": [
        "rootfs-image", "-t", "qemux86-64", "-n", "rootfs-1", "-f", "{img.ext4}", "--no-progress",
    ],
    "rootfs_v2": [
        "rootfs-image", "-v", "2", "-t", "beaglebone", "-t", "qemux86-64", "-n", "rootfs-v2",
        "-f", "{img.ext4}", "--no-progress",
    ],
    "bootstrap": ["bootstrap-artifact", "-n", "bootstrap-1", "-t", "dev-a", "--no-progress"],
    "module_no_files": ["module-image", "-T", "script", "-n", "no-files-1", "-t", "dev-a"],
    "augmented": [
        "module-image", "-T", "app", "-n", "augmented-1", "-t", "dev-a", "-f", "{payload.txt}",
        "--meta-data", "{meta.json}", "--augment-type", "app-delta", "--augment-file", "{aug.bin}",
        "--augment-provides", "delta.provided:yes", "--augment-depends", "delta.base:release-0",
        "--augment-meta-data", "{augment-meta.json}",
    ],
    "big_none": [
        "module-image", "-T", "single-file", "-n", "big-1", "-t", "dev-a", "-f", "{big.bin}",
        "--compression", "none",
    ],
    # mender-artifact writes these without complaint; the Mender server refuses them at upload.
    "conflicting_provides": [
        "module-image", "-T", "app", "-n", "conflict-1", "-t", "dev-a", "-f", "{payload.txt}",
        "-p", "artifact_name:other",
    ],
    "conflicting_depends": [
        "module-image", "-T", "app", "-n", "conflict-2", "-t", "dev-a", "-f", "{payload.txt}",
        "-d", "device_type:other",
    ],
}  # fmt: skip


@pytest.fixture(scope="session")
def mender_artifacts(
    mender_artifact_binary: str,
    artifact_inputs: Inputs,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    output_dir = tmp_path_factory.mktemp("artifacts")
    built: dict[str, Path] = {}
    for name, recipe in ARTIFACT_RECIPES.items():
        output = output_dir / f"{name}.mender"
        args = [_substitute(arg, artifact_inputs) for arg in recipe]
        subprocess.run(
            [mender_artifact_binary, "write", *args, "-o", str(output)],
            check=True,
            capture_output=True,
        )
        built[name] = output
    return built


@pytest.fixture(scope="session")
def artifact_bytes(mender_artifacts: dict[str, Path]) -> Callable[[str], bytes]:
    def load(name: str) -> bytes:
        return mender_artifacts[name].read_bytes()

    return load


def _substitute(arg: str, inputs: Inputs) -> str:
    if arg.startswith("{") and arg.endswith("}"):
        return inputs.path(arg[1:-1])
    return arg
