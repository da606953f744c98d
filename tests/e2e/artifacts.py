"""Mender artifacts for end-to-end tests, written by the real ``mender-artifact`` (3.9).

Every artifact is a ``module-image`` for the harness's ``probe-sandbox`` update module (see
``tests/e2e/mender_harness.py``): the module copies the payload files to the client's sandbox,
and fails ``ArtifactInstall`` when the payload holds a file named ``probe-fail-ArtifactInstall``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.e2e.mender_harness import MENDER_ARTIFACT

PAYLOAD_TYPE = "probe-sandbox"
DEVICE_TYPE = "probe-device"
# The probe-sandbox module fails ArtifactInstall (after copying) when the payload holds this file.
FAIL_INSTALL_FILE = "probe-fail-ArtifactInstall"


def mender_artifact_missing() -> list[str]:
    """What building artifacts needs but this machine lacks (for ``require_e2e``)."""
    return [] if MENDER_ARTIFACT.exists() else [str(MENDER_ARTIFACT)]


def build_module_artifact(
    directory: Path,
    name: str,
    files: Mapping[str, bytes],
    *,
    device_types: tuple[str, ...] = (DEVICE_TYPE,),
    payload_type: str = PAYLOAD_TYPE,
) -> Path:
    """Write ``<directory>/<name>.mender`` with ``files`` (basename -> content) as the payload."""
    if not files:
        raise ValueError("a module-image needs at least one payload file")
    payload_dir = directory / f"{name}-payload"
    payload_dir.mkdir(parents=True, exist_ok=False)
    command = [
        str(MENDER_ARTIFACT),
        "write",
        "module-image",
        "--type",
        payload_type,
        "--artifact-name",
        name,
    ]
    for device_type in device_types:
        command += ["--device-type", device_type]
    for filename, content in files.items():
        if "/" in filename:
            raise ValueError(f"payload files are flat: {filename!r}")
        path = payload_dir / filename
        path.write_bytes(content)
        command += ["--file", str(path)]
    output = directory / f"{name}.mender"
    command += ["--output-path", str(output)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"mender-artifact failed with {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return output


def build_release(directory: Path, name: str) -> tuple[Path, dict[str, bytes]]:
    """An artifact that installs cleanly; returns it and the files the client should end up with."""
    files = {
        "release.txt": f"payload of {name}\n".encode(),
        "config.json": b'{"probe": true}\n',
    }
    return build_module_artifact(directory, name, files), files


def build_failing_release(directory: Path, name: str) -> Path:
    """An artifact whose installation fails in the probe module's ``ArtifactInstall``."""
    files = {
        "release.txt": f"payload of {name}\n".encode(),
        FAIL_INSTALL_FILE: b"fail on purpose\n",
    }
    return build_module_artifact(directory, name, files)


__all__ = [
    "DEVICE_TYPE",
    "FAIL_INSTALL_FILE",
    "PAYLOAD_TYPE",
    "build_failing_release",
    "build_module_artifact",
    "build_release",
    "mender_artifact_missing",
]
