"""Request middleware: request ids, and the edge half of the input policy (body size, path, query)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.api.errors import error_body
from config.input_policy import UnacceptableInput, check_text, is_large_upload


class RequestIdMiddleware:
    """Tags every request with an id that error bodies and the X-Men-Requestid header carry."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Men-Requestid") or uuid.uuid4().hex
        # An attribute of our own on Django's request (read by config.api.errors.request_id_of).
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Men-Requestid"] = request_id
        return response


class InputPolicyMiddleware:
    """Refuses, before any view runs, what no endpoint can take (config.input_policy).

    - a request body over FLOTILLA_MAX_JSON_BODY bytes (413), except multipart uploads, which
      the artifact upload bounds itself;
    - a path or query parameter with a NUL or a lone surrogate, or a path segment or query
      value longer than FLOTILLA_MAX_QUERY_VALUE_LENGTH characters (400).
    JSON bodies are checked by config.api.parsers.PolicyJSONParser.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        too_large = _body_too_large(request)
        if too_large is not None:
            return JsonResponse(error_body(too_large, request), status=413)
        try:
            _check_path_and_query(request)
        except UnacceptableInput as exc:
            return JsonResponse(error_body(str(exc), request), status=400)
        return self.get_response(request)


def _body_too_large(request: HttpRequest) -> str | None:
    if is_large_upload(
        request.content_type or "",
        request.path_info,
        settings.FLOTILLA_MULTIPART_UPLOAD_PATHS,
    ):
        return None
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    limit = settings.FLOTILLA_MAX_JSON_BODY
    if length > limit:
        return f"request body exceeds the limit of {limit} bytes"
    return None


def _check_path_and_query(request: HttpRequest) -> None:
    max_length = settings.FLOTILLA_MAX_QUERY_VALUE_LENGTH
    check_text(request.path_info, what="path")
    if any(len(segment) > max_length for segment in request.path_info.split("/")):
        raise UnacceptableInput(
            f"path: a segment is longer than {max_length} characters"
        )
    for key, values in request.GET.lists():
        check_text(key, what="query parameter name")
        if len(key) > max_length:
            raise UnacceptableInput(
                f"a query parameter name is longer than {max_length} characters"
            )
        for value in values:
            check_text(value, what=f"query parameter {key}")
            if len(value) > max_length:
                raise UnacceptableInput(
                    f"query parameter {key} is longer than {max_length} characters"
                )
