"""Device endpoints accept only device tokens; every failure is 401 so the client re-authenticates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api.tokens import DEVICE_CLAIM, InvalidToken, bearer_token, decode_token
from devices_app.models import Device
from devices_app.selectors import get_device_for_token

if TYPE_CHECKING:
    from rest_framework.permissions import _PermissionClass


def device_id_of(request: Request) -> uuid.UUID:
    """The id of the device whose token authenticated the request (views behind IsDevice)."""
    device = request.user
    if not isinstance(device, Device):
        raise exceptions.NotAuthenticated("not a device")
    return device.id


class DeviceTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Any) -> tuple[Device, dict[str, Any]]:
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            raise exceptions.AuthenticationFailed("missing device token")
        try:
            claims = decode_token(token)
        except InvalidToken:
            raise exceptions.AuthenticationFailed("invalid or expired token") from None
        if claims.get(DEVICE_CLAIM) is not True:
            raise exceptions.AuthenticationFailed("not a device token")
        try:
            device = get_device_for_token(
                device_id=claims["sub"], token_id=claims["jti"]
            )
        except (ValidationError, ValueError):
            device = None
        if device is None:
            raise exceptions.AuthenticationFailed(
                "token revoked or device not accepted"
            )
        return device, claims

    def authenticate_header(self, request: Any) -> str:
        return "Bearer"


class IsDevice(BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.user, Device)


class DeviceAPIView(APIView):
    """Base of device-facing views: device token auth, JSON in."""

    authentication_classes: Sequence[type[authentication.BaseAuthentication]] = [
        DeviceTokenAuthentication
    ]
    permission_classes: Sequence[_PermissionClass] = [IsDevice]
