"""Admin: login lockouts (read-only), issued tokens (deleting one revokes it), and users whose
password change in the admin revokes their tokens as the API's does."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db import transaction
from django.http import HttpRequest

from config.accounts.models import AccessToken, LoginLockout
from config.accounts.services.tokens import revoke_user_tokens


class RevokingPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "change password" form: the new password also ends every token of the user."""

    def save(self, commit: bool = True) -> Any:
        with transaction.atomic():
            user = super().save(commit=commit)
            revoke_user_tokens(user_id=user.pk)
        return user


class FlotillaUserAdmin(UserAdmin):
    change_password_form = RevokingPasswordChangeForm


User = get_user_model()
admin.site.unregister(User)
admin.site.register(User, FlotillaUserAdmin)


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
