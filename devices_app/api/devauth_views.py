"""Device authentication: the device-facing auth request and the devauth management API."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.http import HttpResponse
from rest_framework import status
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.pagination import page_slice, paging_headers, parse_page
from config.api.parsers import PolicyJSONParser
from config.api.throttles import AUTH_REQUEST_THROTTLES
from config.errors import InvalidInput
from devices_app import selectors
from devices_app.api import schema
from devices_app.api.authentication import DeviceAPIView, device_id_of
from devices_app.api.devauth_serializers import (
    DEVICE_STATUS_FILTERS,
    AuthSetStatusInputSerializer,
    DeviceOutputSerializer,
    PreauthorizeInputSerializer,
)
from devices_app.exceptions import AuthSetNotFound, InvalidAuthRequest, TokenNotFound
from devices_app.services import devauth


@schema.auth_request
class AuthRequestView(APIView):
    """``POST /api/devices/v1/authentication/auth_requests``: the Authorization header carries a tenant token."""

    throttle_scope = "auth_requests"  # the label of its 429s in /metrics
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = AUTH_REQUEST_THROTTLES

    def post(self, request: Request) -> HttpResponse | Response:
        signature = request.META.get("HTTP_X_MEN_SIGNATURE")
        raw_body = request.body
        if not signature:
            raise InvalidAuthRequest("missing request signature header")
        token = devauth.submit_auth_request(raw_body=raw_body, signature=signature)
        return HttpResponse(token, content_type="application/jwt")


@schema.device_ping
class DevicePingView(DeviceAPIView):
    """``GET|POST /api/devices/v1/flotilla/ping``: our own trivial device-authenticated endpoint.

    Lets a device (or a benchmark) check its token; it is the baseline the poll benchmark compares to.
    """

    def get(self, request: Request) -> Response:
        return Response({"id": str(device_id_of(request))})

    post = get


def _status_filter(raw: str | None) -> list[str] | None:
    if raw is None or raw == "":
        return None
    if raw not in DEVICE_STATUS_FILTERS:
        raise InvalidInput("status must be one of: " + ", ".join(DEVICE_STATUS_FILTERS))
    return [raw]


def _status_filters(values: list[Any]) -> list[str] | None:
    """Mender's device filter ``status`` (repeatable): each one a known status, else 400."""
    statuses = [value for value in values if value != ""]
    for value in statuses:
        if not isinstance(value, str) or value not in DEVICE_STATUS_FILTERS:
            raise InvalidInput(
                "filter status must be one of: " + ", ".join(DEVICE_STATUS_FILTERS)
            )
    return statuses or None


def _id_filters(values: list[Any]) -> list[uuid.UUID] | None:
    """Mender's device filter ``id`` (repeatable); an id that is no UUID matches no device."""
    ids = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidInput("invalid JSON type for 'id': must be string or []string")
        with contextlib.suppress(ValueError):
            ids.append(uuid.UUID(value))
    if values and not ids:
        return [uuid.UUID(int=0)]  # ids were asked for, none can exist
    return ids or None


def _as_list(value: Any) -> list[Any]:
    """A filter property given as a string or a list of strings (Mender accepts both)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _device_page(request: Request, statuses: Any, ids: Any) -> Response:
    page = parse_page(request.query_params)
    devices = selectors.list_devices(
        statuses=_status_filters(statuses), ids=_id_filters(ids)
    )
    total = devices.count()
    data = DeviceOutputSerializer(page_slice(devices, page), many=True).data
    return Response(data, headers=paging_headers(request, page, total))


@schema.device_list
class DeviceListView(APIView):
    """``GET /devices`` (list, paged) and ``POST /devices`` (preauthorize)."""

    def get(self, request: Request) -> Response:
        return _device_page(
            request,
            request.query_params.getlist("status"),
            request.query_params.getlist("id"),
        )

    def post(self, request: Request) -> Response:
        payload = PreauthorizeInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        device = devauth.preauthorize_device(**payload.validated_data)
        return Response(
            status=status.HTTP_201_CREATED, headers={"Location": f"devices/{device.id}"}
        )


@schema.devauth_device_search
class DeviceSearchView(APIView):
    """``POST /devices/search``: the list's filter (``status``, ``id``: string or list) in a JSON body."""

    parser_classes = [PolicyJSONParser, FormParser]  # Mender takes both

    def post(self, request: Request) -> Response:
        if not request.body.strip():  # as Mender's code: no body at all is malformed
            raise InvalidInput("api: malformed request body")
        body = request.data if request.data else {}
        if hasattr(body, "getlist"):  # a form body, as Mender also takes
            return _device_page(request, body.getlist("status"), body.getlist("id"))
        if not isinstance(body, dict):
            raise InvalidInput("api: malformed request body")
        return _device_page(
            request, _as_list(body.get("status")), _as_list(body.get("id"))
        )


@schema.device_detail
class DeviceDetailView(APIView):
    def get(self, request: Request, device_id: Any) -> Response:
        return Response(
            DeviceOutputSerializer(selectors.get_device(device_id=device_id)).data
        )

    def delete(self, request: Request, device_id: Any) -> Response:
        devauth.decommission_device(device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.device_count
class DeviceCountView(APIView):
    def get(self, request: Request) -> Response:
        statuses = _status_filter(request.query_params.get("status"))
        return Response(
            {"count": selectors.count_devices(status=statuses[0] if statuses else None)}
        )


@schema.auth_set_status
class AuthSetStatusView(APIView):
    def get(self, request: Request, device_id: Any, auth_set_id: Any) -> Response:
        device = selectors.get_device(device_id=device_id)
        auth_set = next(
            (a for a in device.auth_sets.all() if a.id == auth_set_id), None
        )
        if auth_set is None:
            raise AuthSetNotFound("auth set not found")
        return Response({"status": auth_set.status})

    def put(self, request: Request, device_id: Any, auth_set_id: Any) -> Response:
        payload = AuthSetStatusInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        devauth.set_auth_set_status(
            device_id=device_id,
            auth_set_id=auth_set_id,
            to=payload.validated_data["status"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.auth_set_detail
class AuthSetDetailView(APIView):
    def delete(self, request: Request, device_id: Any, auth_set_id: Any) -> Response:
        devauth.delete_auth_set(device_id=device_id, auth_set_id=auth_set_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.token_detail
class TokenDetailView(APIView):
    def delete(self, request: Request, token_id: Any) -> Response:
        if not devauth.revoke_device_token(token_id=token_id):
            raise TokenNotFound("token not found")
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.device_limit
class DeviceLimitView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"limit": 0})
