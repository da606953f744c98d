"""Input validation for the artifact and release endpoints (output shapes: deployments_app.api.artifact_output)."""

from __future__ import annotations

from rest_framework import serializers

from deployments_app.services.artifacts import MAX_DESCRIPTION_LENGTH


class ArtifactUploadInputSerializer(serializers.Serializer):
    """The non-file parts of the multipart upload: `size`, `description`, `artifact_id`."""

    size = serializers.IntegerField(required=False, min_value=0)
    description = serializers.CharField(
        allow_blank=True,
        max_length=MAX_DESCRIPTION_LENGTH,
        trim_whitespace=False,
        default="",
    )
    artifact_id = serializers.UUIDField(required=False)


class ArtifactEditInputSerializer(serializers.Serializer):
    description = serializers.CharField(
        allow_blank=True, max_length=MAX_DESCRIPTION_LENGTH, trim_whitespace=False
    )


class ReleaseNotesInputSerializer(serializers.Serializer):
    notes = serializers.CharField(
        allow_blank=True, max_length=MAX_DESCRIPTION_LENGTH, trim_whitespace=False
    )


def validate_release_tags_input(data: object) -> list[str]:
    """The body of PUT …/releases/{name}/tags: a JSON array of strings."""
    field = serializers.ListField(
        child=serializers.CharField(max_length=1024), allow_empty=True
    )
    return field.run_validation(data)
