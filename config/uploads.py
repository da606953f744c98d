"""Upload handling shared by every view that receives files (the API upload and the admin's)."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import (
    FileUploadHandler,
    TemporaryFileUploadHandler,
)


class SpooledUploadedFile(TemporaryUploadedFile):
    """A TemporaryUploadedFile in FLOTILLA_UPLOAD_SPOOL_DIR (created when missing).

    Not FILE_UPLOAD_TEMP_DIR: Django's checks demand that one exist before anything runs.
    """

    def __init__(
        self,
        name: str,
        content_type: str | None,
        size: int,
        charset: str | None,
        content_type_extra: dict[str, Any] | None = None,
    ) -> None:
        directory = settings.FLOTILLA_UPLOAD_SPOOL_DIR
        os.makedirs(directory, exist_ok=True)
        _, extension = os.path.splitext(name)
        # Same naming as Django's ("tmp....upload.ext"): the upload sweep matches it.
        file = tempfile.NamedTemporaryFile(suffix=".upload" + extension, dir=directory)  # noqa: SIM115 - owned by the UploadedFile
        UploadedFile.__init__(
            self, file, name, content_type, size, charset, content_type_extra
        )


class SpoolDirectoryUploadHandler(TemporaryFileUploadHandler):
    """Spools file parts to FLOTILLA_UPLOAD_SPOOL_DIR.

    That directory holds nothing but upload spool files: the upload sweep removes the ones a
    killed web process left (deployments_app.services.upload_sweep).
    """

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        FileUploadHandler.new_file(self, *args, **kwargs)
        assert self.file_name is not None  # new_file() has just set it
        self.file = SpooledUploadedFile(
            self.file_name, self.content_type, 0, self.charset, self.content_type_extra
        )
