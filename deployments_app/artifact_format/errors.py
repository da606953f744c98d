"""The single exception raised for any artifact that cannot be accepted."""

from __future__ import annotations


class ArtifactError(ValueError):
    """The artifact is malformed, corrupt or unsupported.

    The message is the human-readable reason, meant to be returned to the uploader as is.
    """
