"""Tags every request with an id that error bodies and the X-Men-Requestid header carry."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Men-Requestid") or uuid.uuid4().hex
        # An attribute of our own on Django's request (read by config.api.errors.request_id_of).
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Men-Requestid"] = request_id
        return response
