"""Releases, the artifacts that make them up, and the index that keeps (name, depends) unique."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, HashIndex
from django.core.files.storage import Storage, storages
from django.db import models
from django.db.models.functions import MD5
from django.utils import timezone

__all__ = [
    "Artifact",
    "ArtifactDependsKey",
    "Release",
    "artifact_storage",
    "artifact_upload_to",
]


def artifact_storage() -> Storage:
    """The storage artifacts live in (settings.STORAGES["artifacts"]: local files or an S3 bucket)."""
    return storages["artifacts"]


def artifact_upload_to(instance: Artifact, filename: str) -> str:
    """Object key of an artifact's file: its id, so names never collide or leak user input."""
    return f"artifacts/{instance.id}.mender"


class Release(models.Model):
    """All artifacts sharing one artifact name; carries the release-level notes and tags."""

    # Artifact names may be up to 4096 characters, longer than a btree entry may be:
    # uniqueness goes through md5(name), equality lookups through a hash index.
    name = models.CharField(max_length=4096)
    notes = models.TextField(blank=True, default="")
    tags = ArrayField(models.CharField(max_length=1024), default=list, blank=True)
    modified = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(MD5("name"), name="uniq_release_name"),
        ]
        indexes = [HashIndex(fields=["name"], name="release_name_hash")]

    def __str__(self) -> str:
        return self.name


class Artifact(models.Model):
    """One uploaded `.mender` file and the metadata extracted from it (spec §4.12)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    release = models.ForeignKey(
        Release, on_delete=models.PROTECT, related_name="artifacts"
    )
    name = models.CharField(max_length=4096)
    description = models.TextField(blank=True, default="")
    device_types_compatible = ArrayField(models.CharField(max_length=4096))
    info_format = models.CharField(max_length=64, default="mender")
    info_version = models.PositiveSmallIntegerField()
    signed = models.BooleanField(default=False)
    provides = models.JSONField(default=dict, blank=True)
    # Includes "device_type": [...] (always equal to device_types_compatible).
    depends = models.JSONField(default=dict, blank=True)
    clears = ArrayField(models.TextField(), default=list, blank=True)
    # Per payload: {"type_info": {"type": ...}, "files": [...], "meta_data": {...} | None}.
    updates = models.JSONField(default=list, blank=True)
    size = models.BigIntegerField()
    modified = models.DateTimeField(default=timezone.now)
    file = models.FileField(
        storage=artifact_storage, upload_to=artifact_upload_to, max_length=1024
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(size__gte=0), name="artifact_size_non_negative"
            ),
        ]
        indexes = [
            HashIndex(fields=["name"], name="artifact_name_hash"),
            GinIndex(
                fields=["device_types_compatible"], name="artifact_device_types_gin"
            ),
            models.Index(fields=["modified"], name="artifact_modified"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({', '.join(self.device_types_compatible)})"


class ArtifactDependsKey(models.Model):
    """One (name, depends combination) an artifact claims; the unique key makes overlaps impossible (§4.12)."""

    artifact = models.ForeignKey(
        Artifact, on_delete=models.CASCADE, related_name="depends_keys"
    )
    name = models.CharField(max_length=4096)
    combination = models.JSONField()
    # sha256 hex of the canonical JSON of [name, combination]: fixed width, so the
    # unique index works for names of any length.
    key = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return f"{self.name} {self.combination}"
