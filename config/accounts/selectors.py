"""Reads for the useradm API and for token authentication."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import F
from django.db.models.functions import Coalesce

from config.accounts.models import AccessToken

if TYPE_CHECKING:
    from django.db.models import QuerySet


def users_with_timestamps() -> QuerySet[Any]:
    """Users annotated with ``updated_ts`` (profile time, else creation time)."""
    return (
        get_user_model()
        .objects.annotate(
            updated_ts=Coalesce(F("profile__updated_at"), F("date_joined"))
        )
        .order_by("pk")
    )


def list_users(
    *,
    ids: Sequence[int] = (),
    emails: Sequence[str] = (),
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    updated_after: dt.datetime | None = None,
    updated_before: dt.datetime | None = None,
) -> QuerySet[Any]:
    """Users matching Mender's list filters (repeated ``id``/``email``, creation/update bounds)."""
    users = users_with_timestamps()
    if ids:
        users = users.filter(pk__in=ids)
    if emails:
        users = users.filter(email__in=[email.lower() for email in emails])
    if created_after is not None:
        users = users.filter(date_joined__gt=created_after)
    if created_before is not None:
        users = users.filter(date_joined__lt=created_before)
    if updated_after is not None:
        users = users.filter(updated_ts__gt=updated_after)
    if updated_before is not None:
        users = users.filter(updated_ts__lt=updated_before)
    return users


def get_user(*, user_id: int) -> Any | None:
    return users_with_timestamps().filter(pk=user_id).first()


def list_personal_access_tokens(*, user_id: int) -> QuerySet[AccessToken]:
    return AccessToken.objects.personal().for_user(user_id).order_by("created_at")


def get_live_token(*, token_id: uuid.UUID, token_hash: str) -> AccessToken | None:
    """The unexpired token row with its active user, in one indexed query (per request)."""
    return (
        AccessToken.objects.unexpired()
        .select_related("user")
        .filter(pk=token_id, token_hash=token_hash, user__is_active=True)
        .first()
    )
