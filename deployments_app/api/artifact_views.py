"""Artifacts and releases management API, and the signed artifact download view."""

from __future__ import annotations

import os
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.http.multipartparser import MultiPartParserError
from django.utils.http import http_date
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.errors import DOMAIN_ERROR_STATUS, error_body
from config.api.pagination import page_slice, paging_headers, parse_page
from config.errors import DomainError, InvalidInput
from config.timestamps import rfc3339
from config.uploads import SpoolDirectoryUploadHandler
from deployments_app.api import schema
from deployments_app.api.artifact_output import artifact_output, release_output
from deployments_app.api.artifact_serializers import (
    ArtifactEditInputSerializer,
    ArtifactUploadInputSerializer,
    ReleaseNotesInputSerializer,
    validate_release_tags_input,
)
from deployments_app.api.links import public_base_url
from deployments_app.downloads import verify_signed_request
from deployments_app.exceptions import ArtifactTooLarge, ReleaseNotFound
from deployments_app.selectors import artifacts as selectors
from deployments_app.services import artifacts as artifact_services

ARTIFACT_LOCATION = "./management/v1/deployments/artifacts/{id}"
# Room for the multipart framing and the small form fields around the file part.
_MULTIPART_OVERHEAD = 1024 * 1024


def _artifact_filters(request: Request) -> dict[str, Any]:
    params = request.query_params
    return {
        "name": params.get("name") or None,
        "description": params.get("description") or None,
        "device_type": params.get("device_type") or None,
    }


# ------------------------------------------------------------------ upload


class ArtifactUploadHandler(SpoolDirectoryUploadHandler):
    """Spools each file part to a temporary file on disk; stops once it passes the artifact size limit."""

    def __init__(self, request: HttpRequest, *, max_size: int) -> None:
        super().__init__(request)
        self.max_size = max_size

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > self.max_size:
            self.file.close()  # a NamedTemporaryFile: closing removes it
            raise ArtifactTooLarge(
                f"artifact is larger than the limit of {self.max_size} bytes"
            )
        return super().receive_data_chunk(raw_data, start)


@schema.artifact_list
class ArtifactListView(APIView):
    """``GET /v1/deployments/artifacts`` (unpaged, sorted by name) and ``POST`` (multipart upload)."""

    # The upload is parsed by Django's multipart parser with ArtifactUploadHandler, never by DRF.
    parser_classes: list = []

    def get(self, request: Request) -> Response:
        found = selectors.list_artifacts(**_artifact_filters(request))
        return Response([artifact_output(artifact) for artifact in found])

    def post(self, request: Request) -> Response:
        if not (request.content_type or "").startswith("multipart/form-data"):
            raise InvalidInput("the upload must be multipart/form-data")
        limit = settings.FLOTILLA_MAX_ARTIFACT_SIZE
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            content_length = 0
        if content_length > limit + _MULTIPART_OVERHEAD:
            raise ArtifactTooLarge(
                f"artifact is larger than the limit of {limit} bytes"
            )
        django_request = request._request
        django_request.upload_handlers = [
            ArtifactUploadHandler(django_request, max_size=limit)
        ]
        try:
            fields, files = django_request.POST, django_request.FILES
        except (
            MultiPartParserError,
            RequestDataTooBig,
            TooManyFieldsSent,
            TooManyFilesSent,
        ) as exc:
            raise InvalidInput(f"cannot parse the multipart upload: {exc}") from None
        uploaded = files.get("artifact")
        if uploaded is None:
            raise InvalidInput("request does not contain an artifact file part")
        payload = ArtifactUploadInputSerializer(data=fields)
        payload.is_valid(raise_exception=True)
        artifact = artifact_services.upload_artifact(
            file=uploaded,
            description=payload.validated_data.get("description", ""),
            declared_size=payload.validated_data.get("size"),
            artifact_id=payload.validated_data.get("artifact_id"),
        )
        return Response(
            status=status.HTTP_201_CREATED,
            headers={"Location": ARTIFACT_LOCATION.format(id=artifact.id)},
        )


@schema.artifact_paged_list
class ArtifactPagedListView(APIView):
    """``GET /v1/deployments/artifacts/list``: paged, ``sort`` = name|modified : asc|desc."""

    def get(self, request: Request) -> Response:
        page = parse_page(request.query_params)
        found = selectors.list_artifacts(
            **_artifact_filters(request), sort=request.query_params.get("sort")
        )
        total = found.count()
        data = [artifact_output(artifact) for artifact in page_slice(found, page)]
        return Response(data, headers=paging_headers(request, page, total))


@schema.artifact_detail
class ArtifactDetailView(APIView):
    """``GET``, ``PUT`` (description) and ``DELETE`` ``/v1/deployments/artifacts/{id}``."""

    def get(self, request: Request, artifact_id: str) -> Response:
        return Response(
            artifact_output(selectors.get_artifact(artifact_id=artifact_id))
        )

    def put(self, request: Request, artifact_id: str) -> Response:
        artifact_uuid = selectors.parse_artifact_id(artifact_id)
        payload = ArtifactEditInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        artifact_services.update_artifact_description(
            artifact_id=artifact_uuid, description=payload.validated_data["description"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    def delete(self, request: Request, artifact_id: str) -> Response:
        artifact_services.delete_artifact(
            artifact_id=selectors.parse_artifact_id(artifact_id)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.artifact_download_link
class ArtifactDownloadLinkView(APIView):
    """``GET /v1/deployments/artifacts/{id}/download``: ``{"uri", "expire"}`` for operators."""

    def get(self, request: Request, artifact_id: str) -> Response:
        artifact = selectors.get_artifact(artifact_id=artifact_id)
        uri, expire = artifact_services.artifact_download_link(
            artifact=artifact, base_url=public_base_url(request)
        )
        return Response({"uri": uri, "expire": rfc3339(expire)})


# ------------------------------------------------------------------ releases


def _release_filters(request: Request) -> dict[str, Any]:
    params = request.query_params
    return {
        "name": params.get("name") or None,
        "description": params.get("description") or None,
        "device_type": params.get("device_type") or None,
        "update_type": params.get("update_type") or None,
        "tags": [tag for tag in params.getlist("tag") if tag] or None,
    }


@schema.release_list_v1
class ReleaseListV1View(APIView):
    """``GET /v1/deployments/deployments/releases`` (unpaged; legacy capitalised keys)."""

    def get(self, request: Request) -> Response:
        found = selectors.list_releases(**_release_filters(request))
        return Response([release_output(release, legacy=True) for release in found])


@schema.release_paged_list_v1
class ReleasePagedListV1View(APIView):
    """``GET /v1/deployments/deployments/releases/list`` (paged; legacy keys)."""

    legacy = True

    def get(self, request: Request) -> Response:
        page = parse_page(request.query_params)
        found = selectors.list_releases(
            **_release_filters(request), sort=request.query_params.get("sort")
        )
        total = found.count()
        data = [
            release_output(release, legacy=self.legacy)
            for release in page_slice(found, page)
        ]
        return Response(data, headers=paging_headers(request, page, total))


@schema.release_list_v2
class ReleaseListV2View(ReleasePagedListV1View):
    """``GET /v2/deployments/deployments/releases`` (paged; lowercase keys) and ``DELETE ?name=…``."""

    legacy = False

    def delete(self, request: Request) -> Response:
        artifact_services.delete_releases(names=request.query_params.getlist("name"))
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.release_detail_v2
class ReleaseDetailV2View(APIView):
    """``GET`` and ``PATCH`` (notes) ``/v2/deployments/deployments/releases/{name}``."""

    def get(self, request: Request, release_name: str) -> Response:
        release = selectors.list_releases().filter(name=release_name).first()
        if release is None:
            raise ReleaseNotFound("release not found")
        return Response(release_output(release, legacy=False))

    def patch(self, request: Request, release_name: str) -> Response:
        payload = ReleaseNotesInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        artifact_services.update_release_notes(
            name=release_name, notes=payload.validated_data["notes"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.release_tags_v2
class ReleaseTagsV2View(APIView):
    """``PUT /v2/deployments/deployments/releases/{name}/tags`` with a JSON array of tags."""

    def put(self, request: Request, release_name: str) -> Response:
        tags = validate_release_tags_input(request.data)
        artifact_services.replace_release_tags(name=release_name, tags=tags)
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.release_all_tags_v2
class ReleaseAllTagsV2View(APIView):
    """``GET /v2/deployments/releases/all/tags``."""

    def get(self, request: Request) -> Response:
        return Response(selectors.list_release_tags())


@schema.release_all_types_v2
class ReleaseAllTypesV2View(APIView):
    """``GET /v2/deployments/releases/all/types``: every payload (update) type in use."""

    def get(self, request: Request) -> Response:
        return Response(selectors.list_update_types())


# ------------------------------------------------------------------ signed download (no token)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _Unsatisfiable(Exception):
    pass


def _requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``Range: bytes=…`` request; None = serve the whole file."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None  # multiple or malformed ranges: ignoring Range is allowed (RFC 9110 §14.2)
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix range: the last N bytes
        length = int(last_text)
        if length == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - length), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size:
        raise _Unsatisfiable
    if last < first:
        return None
    return first, min(last, size - 1)


class _FileSlice:
    """A read-only view of ``length`` bytes of an open file from its current position."""

    def __init__(self, handle: Any, length: int) -> None:
        self._handle = handle
        self._remaining = length

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        if size < 0 or size > self._remaining:
            size = self._remaining
        data = self._handle.read(size)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


def _json_error(request: HttpRequest, message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(message, request), status=status_code)


def artifact_download_view(request: HttpRequest, artifact_id: str) -> HttpResponseBase:
    """``GET /api/devices/v1/deployments/download/artifacts/{id}?x-men-expire=…&x-men-signature=…``.

    The signed link is the authorisation (the client sends no token). Sends Content-Length,
    honours ``Range`` (206 + Content-Range), never compresses and never chunks.
    """
    if request.method not in ("GET", "HEAD"):
        not_allowed = _json_error(request, "method not allowed", 405)
        not_allowed["Allow"] = "GET, HEAD"
        return not_allowed
    try:
        verify_signed_request(path=request.path_info, params=request.GET)
        artifact = selectors.get_artifact(artifact_id=artifact_id)
    except DomainError as exc:
        return _json_error(request, exc.message, DOMAIN_ERROR_STATUS[exc.kind])
    storage = artifact.file.storage
    if not artifact_services.is_local_storage(storage):
        url, _expire = artifact_services.artifact_download_link(artifact=artifact)
        return HttpResponseRedirect(url)
    try:
        handle = open(storage.path(artifact.file.name or ""), "rb")  # noqa: SIM115 - closed by the response
    except FileNotFoundError:
        return _json_error(request, "artifact file not found", 404)
    size = os.fstat(handle.fileno()).st_size
    try:
        byte_range = _requested_range(request.headers.get("Range"), size)
    except _Unsatisfiable:
        handle.close()
        refused = _json_error(request, "requested range not satisfiable", 416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    body: Any = handle
    status_code = 200
    length = size
    if byte_range is not None:
        first, last = byte_range
        handle.seek(first)
        length = last - first + 1
        status_code = 206
        if last != size - 1:
            body = _FileSlice(handle, length)
    response = FileResponse(
        body,
        status=status_code,
        content_type=artifact_services.ARTIFACT_CONTENT_TYPE,
        as_attachment=True,
        filename=f"{artifact.name}.mender",
    )
    response["Content-Length"] = str(length)
    if byte_range is not None:
        response["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Last-Modified"] = http_date(artifact.modified.timestamp())
    response["Cache-Control"] = "private, no-transform"
    return response
