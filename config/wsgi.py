"""WSGI entry point: Django wrapped in the chunked-body middleware."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from config.chunked import ChunkedBodyMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

django_application = get_wsgi_application()
application = ChunkedBodyMiddleware(
    django_application,
    max_bytes=settings.FLOTILLA_MAX_REQUEST_BODY,
    in_memory_bytes=settings.FLOTILLA_CHUNKED_SPOOL_IN_MEMORY,
    max_non_upload_bytes=settings.FLOTILLA_MAX_JSON_BODY,
    upload_paths=settings.FLOTILLA_MULTIPART_UPLOAD_PATHS,
)
