"""Absolute links the deployments API hands out."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request


def public_base_url(request: Request) -> str:
    """FLOTILLA_PUBLIC_URL if set, else the scheme and host the request came in on."""
    return settings.FLOTILLA_PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")
