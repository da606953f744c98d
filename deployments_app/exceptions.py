"""Errors of the deployments app: artifacts, releases, download links and the deployment engine."""

from __future__ import annotations

from config.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooLarge,
    Unprocessable,
)


class ArtifactInvalid(InvalidInput):
    """The uploaded file is not an acceptable Mender artifact (the message says why)."""


class ArtifactTooLarge(TooLarge):
    """The upload exceeds FLOTILLA_MAX_ARTIFACT_SIZE (413)."""


class ArtifactNotFound(NotFound):
    pass


class ArtifactConflict(Conflict):
    """Another artifact has the same name and an overlapping depends combination (spec §4.12)."""


class ArtifactInUse(Conflict):
    """An unfinished deployment still needs the artifact (or release)."""


class ReleaseNotFound(NotFound):
    pass


class InvalidDownloadLink(Forbidden):
    """A download link whose signature does not verify or whose lifetime has passed (403)."""


class DeploymentNotFound(NotFound):
    pass


class DeviceDeploymentNotFound(NotFound):
    pass


class InvalidDeployment(InvalidInput):
    pass


class NoArtifactForDeployment(Unprocessable):
    pass


class DuplicateActiveDeployment(Conflict):
    pass


class DeploymentAlreadyFinished(Unprocessable):
    pass


class DeploymentAborted(Conflict):
    """The device's record was aborted (or decommissioned): the client must roll back."""


class InvalidStatusReport(InvalidInput):
    pass


class ConflictingRequest(Conflict):
    """The device's poll contradicts the request stored for its active deployment."""


class FinalStatusLocked(Conflict):
    pass
