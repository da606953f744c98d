"""Shapes of Mender's useradm API (users, personal access tokens)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from config.accounts.models import AccessToken
from config.timestamps import rfc3339

# Mender's limit on emails, passwords and token names (useradm model: lessThan4096).
MAX_FIELD_LENGTH = 4096


class UserCreateInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=MAX_FIELD_LENGTH, trim_whitespace=False)

    def validate_email(self, value: str) -> str:
        if not value.isascii():
            raise serializers.ValidationError("non-ASCII characters are not allowed")
        return value


class UserUpdateInputSerializer(UserCreateInputSerializer):
    email = serializers.EmailField(max_length=254, required=False)
    password = serializers.CharField(
        max_length=MAX_FIELD_LENGTH, trim_whitespace=False, required=False
    )
    current_password = serializers.CharField(
        max_length=MAX_FIELD_LENGTH, trim_whitespace=False, required=False
    )


class UserOutputSerializer(serializers.Serializer):
    """``{id, email, created_ts, updated_ts, login_ts?}`` (login_ts only after a login)."""

    def to_representation(self, user: Any) -> dict[str, Any]:
        data = {
            "id": str(user.pk),
            "email": user.email or user.username,
            "created_ts": rfc3339(user.date_joined),
            "updated_ts": rfc3339(
                getattr(user, "updated_ts", None) or user.date_joined
            ),
        }
        if user.last_login is not None:
            data["login_ts"] = rfc3339(user.last_login)
        return data


class TokenCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    # Seconds; 0 (the default) means the token never expires, as in Mender.
    expires_in = serializers.IntegerField(min_value=0, required=False, default=0)

    def validate_expires_in(self, value: int) -> int:
        maximum = settings.FLOTILLA_PAT_MAX_EXPIRES_IN
        if value > maximum:
            raise serializers.ValidationError(f"must be at most {maximum} seconds")
        return value


class TokenOutputSerializer(serializers.ModelSerializer[AccessToken]):
    """Mender's PersonalAccessToken: never the token itself (shown once, at creation)."""

    class Meta:
        model = AccessToken
        fields = ["id", "name", "created_ts", "expiration_date", "last_used"]

    created_ts = serializers.SerializerMethodField()
    expiration_date = serializers.SerializerMethodField()
    last_used = serializers.SerializerMethodField()

    def get_created_ts(self, token: AccessToken) -> str:
        return rfc3339(token.created_at)

    def get_expiration_date(self, token: AccessToken) -> str | None:
        return rfc3339(token.expires_at) if token.expires_at else None

    def get_last_used(self, token: AccessToken) -> str | None:
        return rfc3339(token.last_used_at) if token.last_used_at else None

    def to_representation(self, token: AccessToken) -> dict[str, Any]:
        data = super().to_representation(token)
        data["id"] = str(token.pk)
        # Mender omits both when unset (a token that never expires, or was never used).
        for optional in ("expiration_date", "last_used"):
            if data[optional] is None:
                del data[optional]
        return data
