"""Artifacts and releases: upload (parse, store, register), edit, delete, download links.

Upload order (spec §3.2.4, §4.12): parse and verify the whole file first (nothing is stored
for an invalid artifact), check (name, depends) uniqueness, store the bytes through the
storage API outside any transaction, then register the row, its release and its depends keys
in one transaction; if registering fails the stored file is removed again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import InvalidInput, Unprocessable
from config.timestamps import rfc3339
from deployments_app.artifact_format import (
    ArtifactError,
    ArtifactMeta,
    depends_combinations,
    read_artifact,
)
from deployments_app.downloads import artifact_download_path, make_signed_url
from deployments_app.exceptions import (
    ArtifactConflict,
    ArtifactInUse,
    ArtifactInvalid,
    ArtifactNotFound,
    ArtifactTooLarge,
    ReleaseNotFound,
)
from deployments_app.locks import artifact_qs_for_update, release_qs_for_update
from deployments_app.models import Artifact, ArtifactDependsKey, Deployment, Release
from deployments_app.models.artifacts import artifact_upload_to
from deployments_app.states import DeploymentStatus

logger = logging.getLogger(__name__)

ARTIFACT_CONTENT_TYPE = "application/vnd.mender-artifact"
MAX_DESCRIPTION_LENGTH = 4096
MAX_RELEASE_TAGS = 20
_RELEASE_LOCK_ATTEMPTS = 5


@dataclass(frozen=True)
class DependsKey:
    """One (name, depends combination) an artifact claims, with its fixed-width unique key."""

    name: str
    combination: dict[str, str]
    key: str


# ------------------------------------------------------------------ hooks for the deployment engine


def on_artifact_uploaded(*, artifact_name: str) -> None:
    """Called inside the upload transaction: unfinished deployments of this name see the new artifact (§1.15)."""
    artifact_ids = list(
        Artifact.objects.filter(name=artifact_name).values_list("id", flat=True)
    )
    Deployment.objects.filter(artifact_name=artifact_name).exclude(
        status=DeploymentStatus.FINISHED
    ).update(artifacts=artifact_ids)


def is_artifact_in_active_deployment(*, artifact: Artifact) -> bool:
    """Whether an unfinished deployment still needs this artifact (blocks delete with 409)."""
    return (
        Deployment.objects.unfinished()
        .filter(artifacts__contains=[artifact.id])
        .exists()
    )


def is_artifact_used_in_any_deployment(*, artifact: Artifact) -> bool:
    """Whether any deployment (finished or not) used this artifact (blocks editing with 422)."""
    return Deployment.objects.filter(artifacts__contains=[artifact.id]).exists()


# ------------------------------------------------------------------ upload


def check_artifact_upload_size(
    *, declared_size: int | None, actual_size: int | None = None
) -> None:
    """Raise ArtifactTooLarge when the declared or actual size exceeds FLOTILLA_MAX_ARTIFACT_SIZE."""
    limit = settings.FLOTILLA_MAX_ARTIFACT_SIZE
    for size in (declared_size, actual_size):
        if size is not None and size > limit:
            raise ArtifactTooLarge(
                f"artifact is larger than the limit of {limit} bytes"
            )


def parse_artifact_upload(
    *, file: IO[bytes] | File[bytes], declared_size: int | None = None
) -> ArtifactMeta:
    """Read and fully verify an uploaded artifact file; nothing is stored.

    `file` must be seekable (an uploaded temporary file); it is read once, in chunks.
    """
    actual_size = _file_size(file)
    check_artifact_upload_size(declared_size=declared_size, actual_size=actual_size)
    if declared_size is not None and declared_size < 0:
        raise ArtifactInvalid("size must not be negative")
    file.seek(0)
    try:
        meta = read_artifact(file)  # type: ignore[arg-type]
    except ArtifactError as exc:
        raise ArtifactInvalid(str(exc)) from None
    finally:
        file.seek(0)
    if declared_size is not None and declared_size != meta.size:
        raise ArtifactInvalid(
            f"artifact size mismatch: the size field says {declared_size} bytes, the file has {meta.size}"
        )
    return meta


def artifact_depends_keys(*, meta: ArtifactMeta) -> list[DependsKey]:
    """The (name, combination) rows an artifact claims in the uniqueness index."""
    try:
        combinations = depends_combinations(artifact_depends(meta=meta))
    except ArtifactError as exc:
        raise ArtifactInvalid(str(exc)) from None
    return [
        DependsKey(
            name=meta.name,
            combination=combination,
            key=_depends_key(meta.name, combination),
        )
        for combination in combinations
    ]


def check_artifact_unique(*, meta: ArtifactMeta) -> None:
    """Raise ArtifactConflict (409) if an artifact with this name and an overlapping depends exists."""
    _raise_on_conflict(artifact_depends_keys(meta=meta))


def artifact_depends(*, meta: ArtifactMeta) -> dict[str, Any]:
    """Merged depends of the artifact with device_type forced to the compatible device types (§4.12)."""
    return {**meta.depends, "device_type": list(meta.device_types_compatible)}


def upload_artifact(
    *,
    file: IO[bytes] | File[bytes],
    description: str = "",
    declared_size: int | None = None,
    artifact_id: uuid.UUID | None = None,
) -> Artifact:
    """Parse, verify, store and register an uploaded `.mender` file; return the new artifact.

    Raises ArtifactInvalid (400), ArtifactTooLarge (413) or ArtifactConflict (409); on any
    failure neither a row nor a stored file remains.
    """
    _check_description(description)
    meta = parse_artifact_upload(file=file, declared_size=declared_size)
    return register_artifact(
        file=file, meta=meta, description=description, artifact_id=artifact_id
    )


def register_artifact(
    *,
    file: IO[bytes] | File[bytes],
    meta: ArtifactMeta,
    description: str = "",
    artifact_id: uuid.UUID | None = None,
) -> Artifact:
    """Store an already parsed artifact's bytes and insert its rows (call outside a transaction).

    Precondition: `meta` came from parse_artifact_upload() on this very file.
    """
    _check_description(description)
    keys = artifact_depends_keys(meta=meta)
    _raise_on_conflict(keys)
    if artifact_id is not None and Artifact.objects.filter(pk=artifact_id).exists():
        raise ArtifactConflict("an artifact with this ID already exists")
    artifact = Artifact(
        id=artifact_id or uuid.uuid4(),
        name=meta.name,
        description=description,
        device_types_compatible=list(meta.device_types_compatible),
        info_format=meta.format,
        info_version=meta.version,
        signed=meta.signed,
        provides=dict(meta.provides),
        depends=artifact_depends(meta=meta),
        clears=list(meta.clears),
        updates=_updates(meta),
        size=meta.size,
        modified=timezone.now(),
    )
    # Slow I/O (a local move or copy, or an S3 multipart upload) before the transaction.
    file.seek(0)
    artifact.file.save(
        artifact_upload_to(artifact, ""), _as_django_file(file), save=False
    )
    stored_name = artifact.file.name
    try:
        with transaction.atomic():
            release = _locked_release(name=meta.name)
            release.modified = artifact.modified
            release.save(update_fields=["modified"])
            artifact.release = release
            artifact.save(force_insert=True)
            ArtifactDependsKey.objects.bulk_create(
                ArtifactDependsKey(
                    artifact=artifact, name=k.name, combination=k.combination, key=k.key
                )
                for k in keys
            )
            on_artifact_uploaded(artifact_name=artifact.name)
    except IntegrityError:
        _delete_stored_file(stored_name)
        # A concurrent upload claimed one of our keys (or the id) between the check and the insert.
        _raise_on_conflict(keys)
        raise ArtifactConflict("an artifact with this ID already exists") from None
    except BaseException:
        _delete_stored_file(stored_name)
        raise
    return artifact


# ------------------------------------------------------------------ edit / delete


def update_artifact_description(
    *, artifact_id: uuid.UUID, description: str
) -> Artifact:
    """Replace an artifact's description."""
    _check_description(description)
    with transaction.atomic():
        artifact = artifact_qs_for_update().filter(pk=artifact_id).first()
        if artifact is None:
            raise ArtifactNotFound("artifact not found")
        if is_artifact_used_in_any_deployment(artifact=artifact):
            raise Unprocessable("the artifact is used in a deployment")
        artifact.description = description
        artifact.modified = timezone.now()
        artifact.save(update_fields=["description", "modified"])
    return artifact


def delete_artifact(*, artifact_id: uuid.UUID) -> None:
    """Delete an artifact, its depends keys, its release when it was the last one, and (after commit) its file."""
    with transaction.atomic():
        artifact = artifact_qs_for_update().filter(pk=artifact_id).first()
        if artifact is None:
            raise ArtifactNotFound("artifact not found")
        if is_artifact_in_active_deployment(artifact=artifact):
            raise ArtifactInUse("the artifact is used by an active deployment")
        _delete_artifact_rows(artifact)


def delete_releases(*, names: Iterable[str]) -> None:
    """Delete every artifact of the named releases (409 if an active deployment needs one of them)."""
    names = [name for name in names if name]
    if not names:
        raise InvalidInput("at least one release name is required")
    with transaction.atomic():
        artifacts = list(artifact_qs_for_update().filter(name__in=names).order_by("pk"))
        in_use = sorted(
            {a.name for a in artifacts if is_artifact_in_active_deployment(artifact=a)}
        )
        if in_use:
            raise ArtifactInUse(
                "the release is used by an active deployment",
                metadata={"releases": in_use},
            )
        for artifact in artifacts:
            _delete_artifact_rows(artifact)


def update_release_notes(*, name: str, notes: str) -> Release:
    """Replace a release's notes."""
    if len(notes) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"notes must be at most {MAX_DESCRIPTION_LENGTH} characters")
    with transaction.atomic():
        release = _existing_release_for_update(name)
        release.notes = notes
        release.modified = timezone.now()
        release.save(update_fields=["notes", "modified"])
    return release


def replace_release_tags(*, name: str, tags: list[str]) -> Release:
    """Replace a release's tags (lower-cased, de-duplicated, at most 20, `[A-Za-z0-9_.-]`)."""
    clean = list(dict.fromkeys(tag.lower() for tag in tags))
    if len(clean) > MAX_RELEASE_TAGS:
        raise InvalidInput(f"a release can have at most {MAX_RELEASE_TAGS} tags")
    for tag in clean:
        if not re.fullmatch(r"[a-z0-9_.-]{1,1024}", tag):
            raise InvalidInput(
                f"invalid tag {tag!r}: only letters, digits and _ . - are allowed"
            )
    with transaction.atomic():
        release = _existing_release_for_update(name)
        release.tags = clean
        release.modified = timezone.now()
        release.save(update_fields=["tags", "modified"])
    return release


# ------------------------------------------------------------------ download links


def artifact_download_link(
    *, artifact: Artifact, base_url: str | None = None, ttl: dt.timedelta | None = None
) -> tuple[str, dt.datetime]:
    """An absolute, expiring download URL for the artifact and its expiry.

    Local storage: a link to our signed download view, based on FLOTILLA_PUBLIC_URL if set,
    else on `base_url` (the request's scheme and host). S3 storage: a presigned bucket URL.
    """
    ttl = ttl if ttl is not None else settings.FLOTILLA_DOWNLOAD_LINK_TTL
    expire = (timezone.now() + ttl).replace(microsecond=0)
    storage = artifact.file.storage
    if not is_local_storage(storage):
        # S3 storage (django-storages) takes presigning options that Storage.url() does not declare.
        presigning: Any = storage
        url = presigning.url(
            artifact.file.name,
            parameters={
                "ResponseContentType": ARTIFACT_CONTENT_TYPE,
                "ResponseContentDisposition": f'attachment; filename="{artifact.id}.mender"',
            },
            expire=max(1, int(ttl.total_seconds())),
        )
        return url, expire
    base = settings.FLOTILLA_PUBLIC_URL or base_url
    if not base:
        raise ImproperlyConfigured(
            "artifact download links need FLOTILLA_PUBLIC_URL or the request's base URL"
        )
    path = artifact_download_path(artifact_id=artifact.id)
    return make_signed_url(base_url=base, path=path, expire=expire), expire


def is_local_storage(storage: Storage) -> bool:
    """Whether files are served by this server (local disk) rather than by the object store itself."""
    return isinstance(storage, FileSystemStorage)


# ------------------------------------------------------------------ helpers


def _file_size(file: IO[bytes] | File[bytes]) -> int | None:
    size = getattr(file, "size", None)
    if isinstance(size, int):
        return size
    try:
        position = file.tell()
        file.seek(0, 2)
        end = file.tell()
        file.seek(position)
    except (AttributeError, OSError):
        return None
    return end


def _as_django_file(file: IO[bytes] | File[bytes]) -> File[bytes]:
    return file if isinstance(file, File) else File(file)


def _check_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ArtifactInvalid(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters"
        )


def _depends_key(name: str, combination: dict[str, str]) -> str:
    canonical = json.dumps(
        [name, combination], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _raise_on_conflict(keys: list[DependsKey]) -> None:
    taken = (
        ArtifactDependsKey.objects.filter(key__in=[k.key for k in keys])
        .values_list("key", flat=True)
        .first()
    )
    if taken is None:
        return
    combination = next(k.combination for k in keys if k.key == taken)
    raise ArtifactConflict(
        "an artifact with the same name and depends already exists",
        metadata={"conflict": combination},
    )


def _updates(meta: ArtifactMeta) -> list[dict[str, Any]]:
    return [
        {
            "type_info": {"type": payload.type},
            "files": [
                {
                    "name": f.name,
                    "checksum": f.checksum,
                    "size": f.size,
                    "date": rfc3339(f.date),
                }
                for f in payload.files
            ],
            "meta_data": payload.meta_data,
        }
        for payload in meta.payloads
    ]


def _locked_release(*, name: str) -> Release:
    """The release row of this name, created if needed and locked (call inside a transaction)."""
    # A concurrent delete of the last artifact may remove the row between get_or_create and the lock.
    for _ in range(_RELEASE_LOCK_ATTEMPTS):
        release, _created = Release.objects.get_or_create(name=name)
        locked = release_qs_for_update().filter(pk=release.pk).first()
        if locked is not None:
            return locked
    raise RuntimeError(f"could not lock release {name!r}")


def _existing_release_for_update(name: str) -> Release:
    release = release_qs_for_update().filter(name=name).first()
    if release is None or not release.artifacts.exists():
        raise ReleaseNotFound("release not found")
    return release


def _delete_artifact_rows(artifact: Artifact) -> None:
    """Delete one artifact row (and an emptied release); the file goes after commit."""
    release = release_qs_for_update().filter(pk=artifact.release_id).first()
    stored_name = artifact.file.name
    artifact.delete()
    if release is not None:
        if release.artifacts.exists():
            release.modified = timezone.now()
            release.save(update_fields=["modified"])
        else:
            release.delete()
    transaction.on_commit(lambda: _delete_stored_file(stored_name))


def _delete_stored_file(name: str | None) -> None:
    if not name:
        return
    try:
        Artifact._meta.get_field("file").storage.delete(name)
    except (
        Exception
    ):  # the row is gone either way; an orphaned file is only wasted space
        logger.exception("could not delete stored artifact file %s", name)


__all__ = [
    "ARTIFACT_CONTENT_TYPE",
    "DependsKey",
    "artifact_depends",
    "artifact_depends_keys",
    "artifact_download_link",
    "check_artifact_unique",
    "check_artifact_upload_size",
    "delete_artifact",
    "delete_releases",
    "is_artifact_in_active_deployment",
    "is_artifact_used_in_any_deployment",
    "is_local_storage",
    "on_artifact_uploaded",
    "parse_artifact_upload",
    "register_artifact",
    "replace_release_tags",
    "update_artifact_description",
    "update_release_notes",
    "upload_artifact",
]


def _meta_data_list(meta_data: Any) -> list[Any]:
    # mender-cli decodes meta_data as a JSON array; an object breaks `artifacts list`.
    if meta_data is None or meta_data == {}:
        return []
    if isinstance(meta_data, list):
        return meta_data
    return [meta_data]


def artifact_snapshot(artifact: Artifact) -> dict[str, Any]:
    """The Mender artifact JSON: stored as a device deployment's `image`, served by the management API."""
    return {
        "id": str(artifact.id),
        "name": artifact.name,
        "description": artifact.description,
        "device_types_compatible": list(artifact.device_types_compatible),
        "info": {"format": artifact.info_format, "version": artifact.info_version},
        "signed": artifact.signed,
        "updates": [
            {
                "type_info": {"type": (update.get("type_info") or {}).get("type")},
                "files": list(update.get("files") or []),
                "meta_data": _meta_data_list(update.get("meta_data")),
            }
            for update in artifact.updates or []
        ],
        "artifact_provides": dict(artifact.provides or {}),
        "artifact_depends": dict(artifact.depends or {}),
        "clears_artifact_provides": list(artifact.clears or []),
        "size": artifact.size,
        "modified": rfc3339(artifact.modified),
    }
