"""Every file upload (API and admin) spools into FLOTILLA_UPLOAD_SPOOL_DIR, created when missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.test import RequestFactory


def test_a_large_file_part_spools_into_a_spool_directory_that_did_not_exist(
    settings: Any, tmp_path: Path
) -> None:
    # given: no spool directory yet, and a file part above FILE_UPLOAD_MAX_MEMORY_SIZE
    spool = tmp_path / "media" / "upload-spool"
    settings.FLOTILLA_UPLOAD_SPOOL_DIR = str(spool)
    content = b"a" * (settings.FILE_UPLOAD_MAX_MEMORY_SIZE + 1)
    request = RequestFactory().post(
        "/admin/", {"artifact": SimpleUploadedFile("big.mender", content)}
    )

    # when: Django parses the body with the configured handlers
    uploaded = request.FILES["artifact"]
    assert isinstance(uploaded, TemporaryUploadedFile)

    # then: it is spooled on disk, in the swept directory
    assert Path(uploaded.temporary_file_path()).parent == spool
    assert [p.name for p in spool.iterdir()] == [
        Path(uploaded.temporary_file_path()).name
    ]
    uploaded.close()
    assert list(spool.iterdir()) == []
