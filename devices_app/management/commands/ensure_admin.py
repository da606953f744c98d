"""Create the first operator account if it does not exist yet (used by `make run`)."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an admin user from FLOTILLA_ADMIN_EMAIL / FLOTILLA_ADMIN_PASSWORD unless it exists."

    def handle(self, *args: Any, **options: Any) -> None:
        email = os.environ.get("FLOTILLA_ADMIN_EMAIL", "admin@example.com")
        password = os.environ.get("FLOTILLA_ADMIN_PASSWORD", "flotilla-admin")
        users = get_user_model().objects
        if users.filter(email__iexact=email).exists():
            self.stdout.write(f"admin user {email} already exists")
            return
        users.create_superuser(username=email, email=email, password=password)
        self.stdout.write(f"created admin user {email}")
