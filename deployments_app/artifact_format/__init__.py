"""Django-free, streaming reader for Mender artifact files (format v3 and v2).

Usage: `meta = read_artifact(uploaded_file)`. Any problem raises ArtifactError, whose message
is the reason to show the uploader. `depends_combinations(meta.depends)` gives the rows of the
(name, depends) uniqueness index.
"""

from deployments_app.artifact_format.depends import (
    MAX_DEPENDS_COMBINATIONS,
    depends_combinations,
)
from deployments_app.artifact_format.errors import ArtifactError
from deployments_app.artifact_format.reader import (
    DEFAULT_MAX_HEADER_SIZE,
    read_artifact,
)
from deployments_app.artifact_format.records import ArtifactMeta, Payload, PayloadFile

__all__ = [
    "DEFAULT_MAX_HEADER_SIZE",
    "MAX_DEPENDS_COMBINATIONS",
    "ArtifactError",
    "ArtifactMeta",
    "Payload",
    "PayloadFile",
    "depends_combinations",
    "read_artifact",
]
