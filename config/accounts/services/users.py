"""Create, update and delete management users (Mender useradm rules)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from config.accounts.exceptions import (
    CannotModifyPassword,
    CurrentPasswordMismatch,
    DuplicateEmail,
    PasswordTooShort,
    UserNotFound,
)
from config.accounts.models import UserProfile
from config.accounts.services.tokens import revoke_user_tokens

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

# Mender's minimum (useradm model.MinPasswordLength).
MIN_PASSWORD_LENGTH = 8
DUPLICATE_EMAIL_MESSAGE = "user with the same email already exists"


def _check_password_length(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordTooShort(
            f"password too short: at least {MIN_PASSWORD_LENGTH} characters"
        )


def _email_taken(email: str, *, except_user_id: int | None = None) -> bool:
    users = get_user_model().objects.all()
    if except_user_id is not None:
        users = users.exclude(pk=except_user_id)
    return users.filter(Q(email__iexact=email) | Q(username__iexact=email)).exists()


def _touch(user_id: int) -> None:
    UserProfile.objects.update_or_create(
        user_id=user_id, defaults={"updated_at": timezone.now()}
    )


@transaction.atomic
def create_user(*, email: str, password: str) -> AbstractUser:
    """A new management user; the email (lower-cased) is also the Django username."""
    email = email.lower()
    _check_password_length(password)
    if _email_taken(email):
        raise DuplicateEmail(DUPLICATE_EMAIL_MESSAGE)
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=email, email=email, password=password
            )
    except IntegrityError:  # a concurrent create took the username
        raise DuplicateEmail(DUPLICATE_EMAIL_MESSAGE) from None
    UserProfile.objects.create(user=user, updated_at=user.date_joined)
    return user


@transaction.atomic
def update_user(
    *,
    user_id: int,
    actor_id: int,
    acting_token_id: uuid.UUID | None,
    email: str | None = None,
    password: str | None = None,
    current_password: str | None = None,
) -> AbstractUser:
    """Change a user's email and/or password, as Mender's useradm does.

    Only the user may change their own password, and changing one's own password or email needs
    ``current_password``. A changed password or email revokes every token of the user except the
    one making the change.
    """
    user = get_user_model().objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise UserNotFound("user not found")
    is_self = user.pk == actor_id
    email = email.lower() if email else None
    changes_email = email is not None and email != user.email.lower()
    if password and not is_self:
        raise CannotModifyPassword("password cannot be modified")
    if password:
        _check_password_length(password)
    if (
        is_self
        and (password or changes_email)
        and not user.check_password(current_password or "")
    ):
        raise CurrentPasswordMismatch("current password mismatch")
    if changes_email:
        assert email is not None  # changes_email implies it
        if _email_taken(email, except_user_id=user.pk):
            raise DuplicateEmail(DUPLICATE_EMAIL_MESSAGE)
        if user.username.lower() == user.email.lower():
            user.username = email
        user.email = email
    if password:
        user.set_password(password)
    if not (password or changes_email):
        return user
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise DuplicateEmail(DUPLICATE_EMAIL_MESSAGE) from None
    _touch(user.pk)
    revoke_user_tokens(
        user_id=user.pk, keep_token_id=acting_token_id if is_self else None
    )
    return user


def delete_user(*, user_id: int) -> None:
    """Remove the user and (by cascade) every token of theirs; unknown ids are ignored."""
    get_user_model().objects.filter(pk=user_id).delete()
