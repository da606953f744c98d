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
    *,
    jti: str,
    subject: str,
    ttl: dt.timedelta | None,
    claims: dict[str, Any],
    now: dt.datetime | None = None,
) -> str:
    """Encode a JWT with the standard claims plus ``claims``; no ``exp`` when ``ttl`` is None."""
    now = now or timezone.now()
    payload = {
        "jti": jti,
        "sub": subject,
        "iss": settings.FLOTILLA_JWT_ISSUER,
        "iat": int(now.timestamp()),
        **claims,
    }
    if ttl is not None:
        payload["exp"] = int((now + ttl).timestamp())
    return jwt.encode(payload, _signing_key(), algorithm=_ALGORITHM)


def decode_token(token: str, *, require_expiry: bool = True) -> dict[str, Any]:
    """Verify signature, expiry (when present, or required) and issuer; return the claims."""
    required = ["jti", "sub", "iat", *(["exp"] if require_expiry else [])]
    try:
        return jwt.decode(
            token,
            _signing_key(),
            algorithms=[_ALGORITHM],
            issuer=settings.FLOTILLA_JWT_ISSUER,
            options={"require": required},
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
