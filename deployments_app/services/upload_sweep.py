"""Remove what a killed upload leaves behind: spool files and stored files without a row.

An artifact upload writes the request's file part to a spool file (FLOTILLA_UPLOAD_SPOOL_DIR),
parses it, moves it into the artifact storage, then inserts the row. A web process killed
before the move leaves the spool file; one killed between the move and the commit leaves a
stored file no row points to. Both are only removed here, once older than a grace period
that exceeds the longest upload, so an upload still in progress is never touched.

Safe to run concurrently (two beats): every removal tolerates the file being gone already.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.storage import Storage
from django.utils import timezone

from deployments_app.models import Artifact
from deployments_app.models.artifacts import artifact_storage

logger = logging.getLogger(__name__)

# Django's TemporaryUploadedFile: NamedTemporaryFile(suffix=".upload" + extension).
_SPOOL_FILE = re.compile(r"^tmp[^/]*\.upload(\.[^/]*)?$")
# artifact_upload_to(): artifacts/<uuid>.mender
_STORED_ARTIFACT = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.mender$"
)
ARTIFACTS_DIRECTORY = "artifacts"
_ROW_LOOKUP_BATCH = 1000


@dataclass(frozen=True)
class UploadSweepResult:
    """What one sweep removed."""

    spool_files: int
    orphaned_artifact_files: int


def upload_spool_directory() -> Path:
    """Where upload requests spool their file parts (created on first use)."""
    return Path(settings.FLOTILLA_UPLOAD_SPOOL_DIR)


def remove_abandoned_spool_files(*, older_than: dt.timedelta, limit: int) -> int:
    """Delete up to ``limit`` upload spool files not written to for ``older_than``; return how many."""
    directory = upload_spool_directory()
    cutoff = _now_timestamp() - older_than.total_seconds()
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if removed >= limit:
            break
        if not _SPOOL_FILE.match(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # the upload finished, or another sweep was first
        removed += 1
        logger.info("removed abandoned upload spool file %s", entry.path)
    return removed


def remove_orphaned_artifact_files(
    *, older_than: dt.timedelta, limit: int, storage: Storage | None = None
) -> int:
    """Delete up to ``limit`` stored artifact files older than ``older_than`` that no row names."""
    storage = storage or artifact_storage()
    try:
        _, filenames = storage.listdir(ARTIFACTS_DIRECTORY)
    except FileNotFoundError:
        return 0
    candidates = sorted(
        f"{ARTIFACTS_DIRECTORY}/{name}"
        for name in filenames
        if _STORED_ARTIFACT.match(name)
    )
    cutoff = _now_timestamp() - older_than.total_seconds()
    removed = 0
    for start in range(0, len(candidates), _ROW_LOOKUP_BATCH):
        batch = candidates[start : start + _ROW_LOOKUP_BATCH]
        referenced = set(
            Artifact.objects.filter(file__in=batch).values_list("file", flat=True)
        )
        for name in batch:
            if removed >= limit:
                return removed
            if name in referenced:
                continue
            try:
                if storage.get_modified_time(name).timestamp() > cutoff:
                    continue
                if not _delete_stored_file(storage, name):
                    continue
            except FileNotFoundError:
                continue
            removed += 1
            logger.info("removed stored artifact file without a row: %s", name)
    return removed


def _delete_stored_file(storage: Storage, name: str) -> bool:
    """Delete one stored file; False when it was already gone (another sweep was first).

    FileSystemStorage.delete() ignores a missing file, so local files are removed directly to
    know; a remote storage's delete is idempotent and counted as done.
    """
    try:
        path = storage.path(name)
    except NotImplementedError:
        storage.delete(name)
        return True
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    return True


def sweep_upload_leftovers(*, limit: int) -> UploadSweepResult:
    """Remove abandoned spool files and orphaned stored artifact files (each up to ``limit``)."""
    return UploadSweepResult(
        spool_files=remove_abandoned_spool_files(
            older_than=dt.timedelta(seconds=settings.FLOTILLA_UPLOAD_SPOOL_MAX_AGE),
            limit=limit,
        ),
        orphaned_artifact_files=remove_orphaned_artifact_files(
            older_than=dt.timedelta(seconds=settings.FLOTILLA_ORPHAN_ARTIFACT_GRACE),
            limit=limit,
        ),
    )


def _now_timestamp() -> float:
    return timezone.now().timestamp()
