"""Every API error is JSON ``{"error": ..., "request_id": ...}`` (Mender convention)."""

from __future__ import annotations

import sys
import uuid
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.counters import record_rate_limit_rejection
from config.errors import DomainError

# Connection refused or lost, server shutting down, too many clients (and deadlocks or
# cancelled statements): transient conditions of the database, not of the request.
DATABASE_OUTAGE_ERRORS = (OperationalError, InterfaceError)
OUTAGE_RETRY_AFTER_SECONDS = 30

DOMAIN_ERROR_STATUS = {
    "invalid": status.HTTP_400_BAD_REQUEST,
    "not_found": status.HTTP_404_NOT_FOUND,
    "conflict": status.HTTP_409_CONFLICT,
    "unprocessable": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "unauthorized": status.HTTP_401_UNAUTHORIZED,
    "forbidden": status.HTTP_403_FORBIDDEN,
    "too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "precondition_failed": status.HTTP_412_PRECONDITION_FAILED,
}


def request_id_of(request: Any) -> str:
    """The id given to this request by RequestIdMiddleware (a fresh one if absent)."""
    request_id = getattr(request, "request_id", None)
    if request_id is None:
        request_id = uuid.uuid4().hex
    return request_id


def error_body(
    message: str, request: Any, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "request_id": request_id_of(request)}
    if metadata:
        body["metadata"] = metadata
    return body


def error_response(
    request: Any, message: str, status_code: int, metadata: dict | None = None
) -> Response:
    return Response(error_body(message, request, metadata), status=status_code)


def _flatten_detail(detail: Any) -> str:
    if isinstance(detail, dict):
        parts = [f"{key}: {_flatten_detail(value)}" for key, value in detail.items()]
        return "; ".join(parts)
    if isinstance(detail, list):
        return "; ".join(_flatten_detail(item) for item in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: domain errors and DRF errors become Mender-style JSON errors."""
    request = context.get("request")
    if isinstance(exc, DomainError):
        return error_response(
            request, exc.message, DOMAIN_ERROR_STATUS[exc.kind], exc.metadata
        )
    if isinstance(exc, exceptions.Throttled):
        view = context.get("view")
        scope = getattr(view, "throttle_scope", None) or type(view).__name__
        record_rate_limit_rejection(scope=scope)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.APIException):
        message = _flatten_detail(exc.detail)
    else:
        message = str(exc)
    response.data = error_body(message, request)
    return response


def json_not_found(
    request: HttpRequest, exception: Exception | None = None
) -> JsonResponse:
    return JsonResponse(error_body("not found", request), status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    """handler500: JSON; 503 with Retry-After when the database is unreachable (an outage, not a bug)."""
    # Django calls this while handling the exception, so it is the current one.
    if isinstance(sys.exc_info()[1], DATABASE_OUTAGE_ERRORS):
        response = JsonResponse(
            error_body("service temporarily unavailable", request), status=503
        )
        response["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
        return response
    return JsonResponse(error_body("internal error", request), status=500)
