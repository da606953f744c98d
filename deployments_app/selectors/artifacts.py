"""Read functions for artifacts and releases (their JSON shapes: deployments_app.api.artifact_output).

Deployment read functions live in deployments_app.selectors.deployments.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import (
    CharField,
    Count,
    Exists,
    F,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
)

from config.errors import InvalidInput
from deployments_app.exceptions import ArtifactNotFound
from deployments_app.models import Artifact, Release

ARTIFACT_SORTS = {
    "name:asc": ("name", "modified", "id"),
    "name:desc": ("-name", "-modified", "-id"),
    "modified:asc": ("modified", "id"),
    "modified:desc": ("-modified", "-id"),
}
RELEASE_SORTS = {
    "name:asc": ("name", "id"),
    "name:desc": ("-name", "-id"),
    "modified:asc": ("modified", "id"),
    "modified:desc": ("-modified", "-id"),
    "artifacts_count:asc": ("artifacts_count", "name", "id"),
    "artifacts_count:desc": ("-artifacts_count", "name", "id"),
    "tags:asc": ("tags", "name", "id"),
    "tags:desc": ("-tags", "name", "id"),
}
# Joins an array for substring search; a control character no device type contains.
_ARRAY_SEPARATOR = "\x1f"


def parse_artifact_id(raw: Any) -> uuid.UUID:
    """A path parameter as a UUID, or 400 "ID is not a valid UUID"."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise InvalidInput("ID is not a valid UUID") from None


def _sort(
    raw: str | None, options: dict[str, tuple[str, ...]], default: str
) -> tuple[str, ...]:
    key = (raw or default).lower()
    if key not in options:
        raise InvalidInput(f"invalid sort parameter: {raw}")
    return options[key]


def _device_types_text() -> Func:
    return Func(
        F("device_types_compatible"),
        Value(_ARRAY_SEPARATOR),
        function="array_to_string",
        output_field=CharField(),
    )


def list_artifacts(
    *,
    name: str | None = None,
    description: str | None = None,
    device_type: str | None = None,
    sort: str | None = None,
) -> QuerySet[Artifact]:
    """Artifacts filtered by case-insensitive substrings of name, description and any device type."""
    artifacts = Artifact.objects.all()
    if name:
        artifacts = artifacts.filter(name__icontains=name)
    if description:
        artifacts = artifacts.filter(description__icontains=description)
    if device_type:
        artifacts = artifacts.annotate(device_types_text=_device_types_text()).filter(
            device_types_text__icontains=device_type
        )
    return artifacts.order_by(*_sort(sort, ARTIFACT_SORTS, "name:asc"))


def get_artifact(*, artifact_id: uuid.UUID | str) -> Artifact:
    """One artifact by id (400 for a malformed id, 404 if unknown)."""
    artifact = Artifact.objects.filter(pk=parse_artifact_id(artifact_id)).first()
    if artifact is None:
        raise ArtifactNotFound("artifact not found")
    return artifact


def list_releases(
    *,
    name: str | None = None,
    description: str | None = None,
    device_type: str | None = None,
    update_type: str | None = None,
    tags: list[str] | None = None,
    sort: str | None = None,
) -> QuerySet[Release]:
    """Releases (groups of artifacts sharing a name) that have artifacts, with them prefetched.

    `name` is a case-insensitive prefix; `description` and `device_type` are case-insensitive
    substrings of one of the release's artifacts; `update_type` is an exact payload type;
    `tags` keeps releases carrying any of the (lower-cased) tags.
    """
    releases = Release.objects.annotate(artifacts_count=Count("artifacts")).filter(
        artifacts_count__gt=0
    )
    if name:
        releases = releases.filter(name__istartswith=name)
    artifact_filter = Q()
    if description:
        artifact_filter &= Q(description__icontains=description)
    if device_type:
        artifact_filter &= Q(device_types_text__icontains=device_type)
    if update_type:
        artifact_filter &= Q(updates__contains=[{"type_info": {"type": update_type}}])
    if artifact_filter:
        matching = (
            Artifact.objects.annotate(device_types_text=_device_types_text())
            .filter(release=OuterRef("pk"))
            .filter(artifact_filter)
        )
        releases = releases.filter(Exists(matching))
    if tags:
        releases = releases.filter(tags__overlap=[tag.lower() for tag in tags])
    return releases.prefetch_related(
        Prefetch("artifacts", queryset=Artifact.objects.order_by("modified", "id"))
    ).order_by(*_sort(sort, RELEASE_SORTS, "name:asc"))


def list_release_tags() -> list[str]:
    """Every tag used by a release, sorted."""
    tags: set[str] = set()
    for release_tags in Release.objects.exclude(tags=[]).values_list("tags", flat=True):
        tags.update(release_tags)
    return sorted(tags)


def list_update_types() -> list[str]:
    """Every payload type of the stored artifacts, sorted."""
    types: set[str] = set()
    for updates in Artifact.objects.values_list("updates", flat=True):
        for update in updates or []:
            payload_type = (update.get("type_info") or {}).get("type")
            if payload_type:
                types.add(payload_type)
    return sorted(types)
