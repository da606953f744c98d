"""WSGI middleware that makes chunked request bodies visible to Django.

The Mender client and mender-cli send request bodies with ``Transfer-Encoding: chunked``
and no ``Content-Length``. Django's WSGI handler reads exactly ``CONTENT_LENGTH`` bytes
(zero when absent), so such bodies would arrive empty. The server (gunicorn) has already
de-chunked ``wsgi.input``; this middleware drains it into a spooled temporary file (kept in
memory up to a threshold, on disk beyond it) and presents it with a real ``CONTENT_LENGTH``.
Bodies larger than the configured bound are refused with 413 before the app runs; bodies other
than multipart uploads have the input policy's much smaller bound (FLOTILLA_MAX_JSON_BODY), so
an unauthenticated client cannot make the server spool gigabytes first.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterable
from typing import Any

from config.input_policy import is_large_upload

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_COPY_CHUNK = 256 * 1024


class RequestBodyTooLarge(Exception):
    """The chunked body exceeded the configured upper bound."""


def spool_body(stream: Any, *, max_bytes: int, in_memory_bytes: int) -> tuple[Any, int]:
    """Copy a readable stream into a rewound spooled file; return it with its length."""
    spool = tempfile.SpooledTemporaryFile(max_size=in_memory_bytes)  # noqa: SIM115 - handed to Django
    total = 0
    while True:
        chunk = stream.read(_COPY_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            spool.close()
            raise RequestBodyTooLarge
        spool.write(chunk)
    spool.seek(0)
    return spool, total


class ChunkedBodyMiddleware:
    """Give chunked requests a spooled body and a Content-Length before Django sees them."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        max_bytes: int,
        in_memory_bytes: int,
        max_non_upload_bytes: int | None = None,
        upload_paths: Collection[str] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.in_memory_bytes = in_memory_bytes
        self.max_non_upload_bytes = max_non_upload_bytes
        self.upload_paths = upload_paths

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        is_chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not is_chunked or environ.get("CONTENT_LENGTH"):
            return self.app(environ, start_response)
        max_bytes = self.max_bytes
        is_upload = is_large_upload(
            environ.get("CONTENT_TYPE", ""),
            environ.get("PATH_INFO", ""),
            self.upload_paths,
        )
        if self.max_non_upload_bytes is not None and not is_upload:
            max_bytes = min(max_bytes, self.max_non_upload_bytes)
        try:
            spool, length = spool_body(
                environ["wsgi.input"],
                max_bytes=max_bytes,
                in_memory_bytes=self.in_memory_bytes,
            )
        except RequestBodyTooLarge:
            return _too_large(start_response, max_bytes)
        environ["wsgi.input"] = spool
        environ["CONTENT_LENGTH"] = str(length)
        return _closing(self.app(environ, start_response), spool)


def _closing(response: Iterable[bytes], spool: Any) -> Iterable[bytes]:
    try:
        yield from response
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
        spool.close()


def _too_large(start_response: Callable[..., Any], max_bytes: int) -> list[bytes]:
    body = json.dumps(
        {
            "error": f"request body exceeds the limit of {max_bytes} bytes",
            "request_id": uuid.uuid4().hex,
        }
    ).encode()
    start_response(
        "413 Request Entity Too Large",
        [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ],
    )
    return [body]


__all__ = ["ChunkedBodyMiddleware", "RequestBodyTooLarge", "spool_body"]
