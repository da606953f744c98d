"""Management endpoints accept only user tokens (never device tokens)."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import authentication, exceptions

from config.accounts.models import AccessToken
from config.accounts.selectors import get_live_token
from config.accounts.services.tokens import record_token_use, token_digest
from config.api.tokens import USER_CLAIM, InvalidToken, bearer_token, decode_token


class UserTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <user JWT>``: a login token or a personal access token.

    The signature is checked first (no query); then one indexed lookup finds the token's row,
    which exists only while the token is neither revoked nor its user deleted. ``last_used_at``
    is written at most once a minute per token.
    """

    def authenticate(self, request: Any) -> tuple[Any, AccessToken] | None:
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            return None
        try:
            # Personal access tokens may have no expiry (Mender's expires_in=0).
            claims = decode_token(token, require_expiry=False)
            token_id = uuid.UUID(str(claims["jti"]))
        except (InvalidToken, ValueError):
            raise exceptions.AuthenticationFailed("invalid or expired token") from None
        if claims.get(USER_CLAIM) is not True:
            raise exceptions.AuthenticationFailed("not a user token")
        row = get_live_token(token_id=token_id, token_hash=token_digest(token))
        if row is None:
            raise exceptions.AuthenticationFailed("token revoked or user inactive")
        record_token_use(token=row)
        return row.user, row

    def authenticate_header(self, request: Any) -> str:
        return "Bearer"
