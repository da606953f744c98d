from __future__ import annotations

import datetime as dt
import uuid

from celery import shared_task
from django.db import IntegrityError, OperationalError
from django.utils import timezone

from devices_app.services.devauth import purge_expired_device_tokens
from devices_app.services.memberships import (
    evaluate_device_filter,
    reevaluate_device_filters,
    repair_run_lock,
    sync_device_memberships,
)

# Filters not evaluated within this period are re-evaluated by the periodic repair.
REEVALUATION_PERIOD = dt.timedelta(minutes=10)
REEVALUATION_LOCK_TIMEOUT = (
    9 * 60
)  # = the soft time limit: a crashed run cannot block for longer


@shared_task
def purge_expired_device_tokens_task(limit: int = 5000) -> int:
    """Delete expired device-token rows in bounded batches."""
    purged = purge_expired_device_tokens(now=timezone.now(), limit=limit)
    if purged == limit:
        purge_expired_device_tokens_task.delay(limit)
    return purged


# Retried: lock/connection trouble (OperationalError), and a membership row that appeared
# meanwhile (IntegrityError, should the lock discipline ever be broken); the services are idempotent.
RETRY_ON = (OperationalError, IntegrityError)


@shared_task(acks_late=True, autoretry_for=RETRY_ON, retry_backoff=True, max_retries=5)
def evaluate_device_filter_task(filter_id: str) -> int:
    """Make a saved filter's stored membership exact (set-based); return rows changed."""
    change = evaluate_device_filter(filter_id=uuid.UUID(filter_id))
    return change.inserted + change.deleted


@shared_task(acks_late=True, autoretry_for=RETRY_ON, retry_backoff=True, max_retries=5)
def recheck_device_memberships_task(device_ids: list[str]) -> int:
    """Re-check a batch of devices against every saved filter; return rows changed."""
    change = sync_device_memberships(
        device_ids=[uuid.UUID(device_id) for device_id in device_ids]
    )
    return change.inserted + change.deleted


@shared_task
def reevaluate_device_filters_task(
    limit: int = 20, evaluated_before: str | None = None
) -> int:
    """Periodic repair: re-evaluate every saved filter, ``limit`` per run, never two runs at once."""
    cutoff = (
        dt.datetime.fromisoformat(evaluated_before)
        if evaluated_before
        else timezone.now() - REEVALUATION_PERIOD / 2
    )
    with repair_run_lock(timeout=REEVALUATION_LOCK_TIMEOUT) as acquired:
        if not acquired:
            return 0
        evaluated = reevaluate_device_filters(evaluated_before=cutoff, limit=limit)
    if (
        evaluated == limit
    ):  # more left: chain the next bounded batch (same cut-off, so it ends)
        reevaluate_device_filters_task.delay(limit, cutoff.isoformat())
    return evaluated
