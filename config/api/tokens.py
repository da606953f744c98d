"""Signed JWTs for devices and users (HS256 with a key derived from SECRET_KEY)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

DEVICE_CLAIM = "mender.device"
USER_CLAIM = "mender.user"
_ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is malformed, badly signed or expired."""


def _signing_key() -> bytes:
    return salted_hmac("flotilla.jwt", "signing-key", algorithm="sha256").digest()


def issue_token(
    *, jti: str, subject: str, ttl: dt.timedelta, claims: dict[str, Any]
) -> str:
    """Encode a JWT with the standard claims plus ``claims``."""
    now = timezone.now()
    payload = {
        "jti": jti,
        "sub": subject,
        "iss": settings.FLOTILLA_JWT_ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        **claims,
    }
    return jwt.encode(payload, _signing_key(), algorithm=_ALGORITHM)


def decode_token(token: str) -> dict[str, Any]:
    """Verify signature, expiry and issuer; return the claims."""
    try:
        return jwt.decode(
            token,
            _signing_key(),
            algorithms=[_ALGORITHM],
            issuer=settings.FLOTILLA_JWT_ISSUER,
            options={"require": ["jti", "sub", "exp", "iat"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc


def bearer_token(authorization_header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization_header:
        return None
    scheme, _, token = authorization_header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
