"""The JSON shapes of the artifact and release endpoints (Mender's management API)."""

from __future__ import annotations

from typing import Any

from config.timestamps import rfc3339
from deployments_app.models import Artifact, Release
from deployments_app.services.artifacts import artifact_snapshot


def artifact_output(artifact: Artifact) -> dict[str, Any]:
    """One artifact: the same document a device deployment stores as its image."""
    return artifact_snapshot(artifact)


def release_output(release: Release, *, legacy: bool) -> dict[str, Any]:
    """A release: v1 (`legacy`) uses the capitalised keys Name/Artifacts/ArtifactsCount/Modified."""
    artifacts = list(release.artifacts.all())
    modified = max([release.modified, *(a.modified for a in artifacts)])
    items = [artifact_output(artifact) for artifact in artifacts]
    if legacy:
        return {
            "Name": release.name,
            "Artifacts": items,
            "ArtifactsCount": len(items),
            "Modified": rfc3339(modified),
            "tags": list(release.tags),
            "notes": release.notes,
        }
    return {
        "name": release.name,
        "modified": rfc3339(modified),
        "artifacts": items,
        "artifacts_count": len(items),
        "tags": list(release.tags),
        "notes": release.notes,
    }
