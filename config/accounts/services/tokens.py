"""Issue and revoke user tokens: login sessions and personal access tokens (PATs).

Every user token is a signed JWT whose ``jti`` names an ``AccessToken`` row holding the token's
SHA-256. Authentication needs both the signature and the row, so deleting the row revokes the
token at once for every web process, and a JWT forged with a leaked key has no row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.accounts.exceptions import DuplicateTokenName, TooManyTokens
from config.accounts.models import AccessToken, TokenKind
from config.api.tokens import USER_CLAIM, issue_token

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

PAT_CLAIM = "flotilla.pat"


def token_digest(token: str) -> str:
    """The SHA-256 (hex) stored in place of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(
    *, user: AbstractBaseUser, kind: TokenKind, name: str, ttl: dt.timedelta | None
) -> str:
    token_id = uuid.uuid4()
    now = timezone.now()
    claims: dict[str, object] = {USER_CLAIM: True}
    if kind == TokenKind.PERSONAL:
        claims[PAT_CLAIM] = True
    token = issue_token(
        jti=str(token_id), subject=str(user.pk), ttl=ttl, claims=claims, now=now
    )
    AccessToken.objects.create(
        id=token_id,
        user_id=user.pk,
        kind=kind,
        name=name,
        token_hash=token_digest(token),
        created_at=now,
        expires_at=None if ttl is None else now + ttl,
    )
    return token


def issue_user_token(*, user: AbstractBaseUser) -> str:
    """A login-session token (``FLOTILLA_USER_TOKEN_TTL``), as the useradm login returns it."""
    return _issue(
        user=user, kind=TokenKind.SESSION, name="", ttl=settings.FLOTILLA_USER_TOKEN_TTL
    )


@transaction.atomic
def issue_personal_access_token(
    *, user: AbstractBaseUser, name: str, expires_in: int
) -> str:
    """A named PAT of ``user`` expiring in ``expires_in`` seconds (0: never, as in Mender)."""
    # Serialises PAT creation per user so the per-user cap holds under concurrency.
    type(user)._default_manager.select_for_update().filter(pk=user.pk).first()
    if (
        AccessToken.objects.personal().for_user(user.pk).count()
        >= settings.FLOTILLA_PAT_LIMIT_PER_USER
    ):
        raise TooManyTokens(
            "maximum number of personal access tokens reached for this user"
        )
    ttl = dt.timedelta(seconds=expires_in) if expires_in else None
    try:
        with transaction.atomic():
            return _issue(user=user, kind=TokenKind.PERSONAL, name=name, ttl=ttl)
    except IntegrityError:
        raise DuplicateTokenName(
            "Personal Access Token with a given name already exists"
        ) from None


def record_token_use(*, token: AccessToken) -> None:
    """Keep ``last_used_at`` current to ``LAST_USED_RESOLUTION``: a write per token per minute, not per request."""
    now = timezone.now()
    if token.is_last_used_stale(now):
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def revoke_token(*, token_id: uuid.UUID) -> None:
    """Revoke one token (logout); unknown ids are ignored."""
    AccessToken.objects.filter(pk=token_id).delete()


def revoke_personal_access_token(*, user_id: int, token_id: uuid.UUID) -> None:
    """Revoke one of ``user_id``'s PATs; someone else's or unknown ids are ignored (Mender: 204)."""
    AccessToken.objects.personal().for_user(user_id).filter(pk=token_id).delete()


def revoke_user_tokens(*, user_id: int, keep_token_id: uuid.UUID | None = None) -> int:
    """Revoke every token of the user (sessions and PATs) except ``keep_token_id``."""
    tokens = AccessToken.objects.for_user(user_id)
    if keep_token_id is not None:
        tokens = tokens.exclude(pk=keep_token_id)
    deleted, _ = tokens.delete()
    return deleted


def purge_expired_tokens(*, now: dt.datetime, limit: int) -> int:
    """Delete up to ``limit`` expired token rows (they can no longer authenticate anyway)."""
    ids = list(
        AccessToken.objects.expired(before=now).values_list("pk", flat=True)[:limit]
    )
    deleted, _ = AccessToken.objects.filter(pk__in=ids).delete()
    return deleted
