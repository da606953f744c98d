"""Management endpoints accept only user tokens (never device tokens)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions

from config.api.tokens import USER_CLAIM, InvalidToken, bearer_token, decode_token


class UserTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <user JWT>`` issued by the useradm login endpoint."""

    def authenticate(self, request: Any) -> tuple[Any, dict[str, Any]] | None:
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            return None
        try:
            claims = decode_token(token)
        except InvalidToken:
            raise exceptions.AuthenticationFailed("invalid or expired token") from None
        if claims.get(USER_CLAIM) is not True:
            raise exceptions.AuthenticationFailed("not a user token")
        user = get_user_model().objects.filter(pk=claims["sub"], is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("user not found or inactive")
        return user, claims

    def authenticate_header(self, request: Any) -> str:
        return "Bearer"
