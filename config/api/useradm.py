"""User login (Mender useradm): HTTP Basic in, raw user JWT out."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import schema
from config.api.errors import error_response
from config.api.tokens import USER_CLAIM, issue_token
from config.timestamps import rfc3339


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, sep, password = decoded.partition(":")
    if not sep:
        return None
    return login, password


def authenticate_user(*, login: str, password: str) -> Any | None:
    """The active user whose email (case-insensitive) or username is ``login`` and whose password matches."""
    users = get_user_model().objects.filter(is_active=True)
    user = (
        users.filter(email__iexact=login).order_by("pk").first()
        or users.filter(username=login).first()
    )
    if user is None or not user.check_password(password):
        return None
    return user


def issue_user_token(*, user: Any) -> str:
    return issue_token(
        jti=uuid.uuid4().hex,
        subject=str(user.pk),
        ttl=settings.FLOTILLA_USER_TOKEN_TTL,
        claims={USER_CLAIM: True},
    )


@schema.login
class LoginView(APIView):
    """``POST /api/management/v1/useradm/auth/login``."""

    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request: Request) -> HttpResponse | Response:
        credentials = _basic_credentials(request.META.get("HTTP_AUTHORIZATION"))
        if credentials is None:
            return error_response(
                request, "missing or malformed Basic credentials", 401
            )
        user = authenticate_user(login=credentials[0], password=credentials[1])
        if user is None:
            return error_response(request, "unauthorized", 401)
        return HttpResponse(issue_user_token(user=user), content_type="application/jwt")


@schema.current_user
class CurrentUserView(APIView):
    """``GET /api/management/v1/useradm/users/me``."""

    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "id": str(user.pk),
                "email": user.email or user.username,
                "created_ts": rfc3339(user.date_joined),
            }
        )
