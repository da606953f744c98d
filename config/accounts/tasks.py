from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from config.accounts.services.tokens import purge_expired_tokens


@shared_task
def purge_expired_access_tokens_task(limit: int = 10_000) -> int:
    """Delete expired user-token rows (bounded; the next run continues)."""
    return purge_expired_tokens(now=timezone.now(), limit=limit)
