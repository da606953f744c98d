from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.permissions import BasePermission


class IsManagementUser(BasePermission):
    """An active Django user authenticated with a user token."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.user, AbstractBaseUser) and request.user.is_active
