"""The server refuses (400, nothing stored) every mutated artifact `mender-artifact validate`
refuses: truncations, bit flips in outer and inner tar headers and end-of-archive blocks,
random bytes in the header and data archives, garbage manifest.sig, removed and repeated
members (the corpus: tests/deployments_app/artifact_mutations.py, from real artifacts).

A mutant that contains manifest.sig is validated with the signing key's public half (without
one, mender-artifact refuses every signed artifact); one without is validated without a key.
The only refusal the server cannot share is a well-formed signature by the wrong key
("signer: verification failed"): the server has no keys, devices verify signatures.
"""

from __future__ import annotations

import io
import logging
import subprocess
import tarfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployments_app.models import Artifact
from tests.deployments_app.artifact_mutations import Mutant, mutants
from tests.deployments_app.conftest import BuiltArtifacts, stored_files

pytestmark = pytest.mark.django_db
logger = logging.getLogger(__name__)

BASES = (
    "module_none",
    "module_gzip",
    "module_xz",
    "random_none",
    "signed_ecdsa",
    "rootfs",
)
KEY_ONLY_REFUSAL = "signer: verification failed"


def _member_names(content: bytes) -> list[str]:
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as archive:
            return [info.name for info in archive]
    except (tarfile.TarError, OSError, EOFError):
        return []


def _mender_validate(tool: str, path: Path, public_key: Path) -> tuple[bool, str]:
    command = [tool, "validate"]
    if "manifest.sig" in _member_names(path.read_bytes()):
        command += ["-k", str(public_key)]
    result = subprocess.run(
        [*command, str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        check=False,
    )
    return result.returncode == 0, (result.stdout + result.stderr).strip()


@pytest.fixture(scope="module")
def public_key(built_artifacts: BuiltArtifacts) -> Path:
    path = built_artifacts.inputs / "ec-public.pem"
    subprocess.run(
        [
            "openssl",
            "ec",
            "-in",
            built_artifacts.inputs / "ec.pem",
            "-pubout",
            "-out",
            path,
        ],
        check=True,
        capture_output=True,
    )
    return path


def test_every_artifact_mender_artifact_refuses_is_refused_with_400(
    built_artifacts: BuiltArtifacts,
    mender_artifact_tool: str,
    public_key: Path,
    media_root: Path,
    upload_artifact_file: Callable[..., Any],
    management_client: Any,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    corpus: list[Mutant] = [
        mutant
        for seed, base in enumerate(BASES)
        for mutant in mutants(base, built_artifacts.bytes(base), seed=seed, per_kind=4)
    ]
    outcomes: Counter[str] = Counter()
    mismatches: list[str] = []
    for mutant in corpus:
        # given: mender-artifact's verdict on the mutant
        path = tmp_path / "mutant.mender"
        path.write_bytes(mutant.content)
        valid, message = _mender_validate(mender_artifact_tool, path, public_key)

        # when: it is uploaded
        response = upload_artifact_file(mutant.content)
        stored_anything = Artifact.objects.exists() or bool(stored_files(media_root))
        if response.status_code == 201:  # a harmless mutation: make room for the next
            artifact_id = Artifact.objects.get().id
            with django_capture_on_commit_callbacks(execute=True):
                management_client.delete(
                    f"/api/management/v1/deployments/artifacts/{artifact_id}"
                )

        # then
        if response.status_code >= 500:
            mismatches.append(f"{mutant.name}: server answered {response.status_code}")
        elif valid:
            outcomes[f"mender accepts, server {response.status_code}"] += 1
        elif message == KEY_ONLY_REFUSAL:
            outcomes[f"mender: wrong signature, server {response.status_code}"] += 1
        else:
            outcomes[f"mender refuses, server {response.status_code}"] += 1
            if response.status_code != 400:
                mismatches.append(
                    f"{mutant.name}: mender-artifact refuses ({message[:120]}) but the "
                    f"server answered {response.status_code}"
                )
        if response.status_code != 201 and stored_anything:
            mismatches.append(f"{mutant.name}: refused, but something was stored")
        assert not Artifact.objects.exists()
        assert stored_files(media_root) == []

    logger.info("artifact corpus: %d mutants, outcomes %s", len(corpus), dict(outcomes))
    assert mismatches == []
    refused = outcomes["mender refuses, server 400"]
    assert refused >= 250, outcomes
    assert sum(outcomes.values()) == len(corpus)
    # the corpus holds each kind of damage the issue reported, and mender refuses them
    for kind in (
        "truncated-at",
        "outer-header-flip",
        "random-bytes-data",
        "manifest-sig",
    ):
        assert any(kind in mutant.name for mutant in corpus), kind
