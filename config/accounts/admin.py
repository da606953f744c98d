"""Admin: login lockouts (read-only) and issued tokens (deleting one revokes it)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from config.accounts.models import AccessToken, LoginLockout


@admin.register(LoginLockout)
class LoginLockoutAdmin(admin.ModelAdmin):
    list_display = [
        "scope",
        "subject",
        "failures",
        "locked_at",
        "locked_until",
        "is_active",
    ]
    list_filter = ["scope"]
    search_fields = ["subject"]
    date_hierarchy = "locked_at"

    @admin.display(boolean=True, description="Locked now")
    def is_active(self, lockout: LoginLockout) -> bool:
        return lockout.is_active

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "kind", "name", "created_at", "expires_at"]
    list_filter = ["kind"]
    list_select_related = ["user"]
    search_fields = ["user__email", "user__username", "name"]
    exclude = ["token_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
