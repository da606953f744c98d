"""Access tokens (login sessions and personal access tokens), user profiles, login lockouts."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class TokenKind(models.TextChoices):
    SESSION = "session", "Login session"
    PERSONAL = "personal", "Personal access token"


class AccessTokenQuerySet(models.QuerySet["AccessToken"]):
    def personal(self) -> AccessTokenQuerySet:
        return self.filter(kind=TokenKind.PERSONAL)

    def for_user(self, user_id: int) -> AccessTokenQuerySet:
        return self.filter(user_id=user_id)

    def unexpired(self) -> AccessTokenQuerySet:
        return self.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )

    def expired(self, *, before: object) -> AccessTokenQuerySet:
        return self.filter(expires_at__lte=before)


LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class AccessToken(models.Model):
    """One issued user JWT; the token is valid only while its row exists (revocation deletes it).

    Only the SHA-256 of the token is kept: the token itself is shown once, at issue.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    kind = models.CharField(max_length=16, choices=TokenKind.choices)
    name = models.CharField(max_length=255, blank=True, default="")
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    # NULL: a personal access token issued without expiry (Mender's expires_in=0).
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Mender's last_used, to the minute or so: refreshed at most every LAST_USED_RESOLUTION.
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = AccessTokenQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=Q(kind="personal"),
                name="uniq_personal_access_token_name_per_user",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["session", "personal"]),
                name="access_token_kind_known",
            ),
            models.CheckConstraint(
                condition=Q(kind="personal") | Q(expires_at__isnull=False),
                name="session_token_expires",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name or self.pk}"

    def is_last_used_stale(self, now: dt.datetime) -> bool:
        return (
            self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION
        )


class UserProfile(models.Model):
    """What Mender keeps on a user and Django's User lacks: when it was last updated."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="profile",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"profile of user {self.user_id}"


class LoginLockout(models.Model):
    """A login account or source address that hit its failed-login limit (shown in the admin).

    The limit itself is enforced by the shared Redis counters; this row records that it tripped.
    """

    class Scope(models.TextChoices):
        ACCOUNT = "account", "Account"
        ADDRESS = "address", "Source address"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    # The login name as typed (lower-cased) or the source address; unknown accounts lock too.
    subject = models.CharField(max_length=255)
    failures = models.PositiveIntegerField()
    locked_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-locked_at"]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} {self.subject} until {self.locked_until:%Y-%m-%d %H:%M:%S}"

    @property
    def is_active(self) -> bool:
        return self.locked_until > timezone.now()
