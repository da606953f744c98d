"""Thin Celery wrappers around deployment services: ids in, idempotent, bounded."""

from __future__ import annotations

import datetime as dt
import uuid

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from deployments_app.services.creation import (
    expand_deployment,
    expand_unexpanded_deployments,
)
from deployments_app.services.phases import advance_phased_rollouts
from deployments_app.services.transitions import (
    finalise_deployment,
    finalise_due_deployments,
)
from deployments_app.services.upload_sweep import sweep_upload_leftovers


@shared_task(acks_late=True)
def expand_deployment_task(deployment_id: str) -> int:
    """Create the device deployments of a static deployment (resumable, idempotent)."""
    return expand_deployment(deployment_id=uuid.UUID(deployment_id))


@shared_task(acks_late=True)
def finalise_deployment_task(deployment_id: str) -> str | None:
    """Finish the deployment if every device deployment is final (or max_devices is reached)."""
    return finalise_deployment(deployment_id=uuid.UUID(deployment_id))


@shared_task
def sweep_deployments_task(limit: int = 200) -> dict[str, int]:
    """Backstop: expand deployments whose expansion was never dispatched, finish due ones."""
    lock_key = "flotilla:sweep-deployments"
    if not cache.add(lock_key, "1", timeout=300):
        return {"skipped": 1}
    try:
        grace = dt.timedelta(seconds=settings.FLOTILLA_EXPANSION_GRACE_SECONDS)
        unexpanded = expand_unexpanded_deployments(older_than=grace, limit=limit)
        for deployment_id in unexpanded:
            expand_deployment_task.delay(deployment_id)
        finished = finalise_due_deployments(limit=limit)
    finally:
        cache.delete(lock_key)
    return {"expansions": len(unexpanded), "finished": finished}


@shared_task
def advance_phased_rollouts_task(limit: int = 500) -> dict[str, int]:
    """Open due phases and start due scheduled deployments, in bounded batches, never overlapping."""
    lock_key = "flotilla:advance-phased-rollouts"
    if not cache.add(lock_key, "1", timeout=120):
        return {"skipped": 1}
    try:
        result = advance_phased_rollouts(now=timezone.now(), limit=limit)
    finally:
        cache.delete(lock_key)
    if result["phases_opened"] == limit or result["deployments_started"] == limit:
        advance_phased_rollouts_task.delay(limit)
    return result


@shared_task
def sweep_upload_leftovers_task(limit: int = 1000) -> dict[str, int]:
    """Remove spool files and stored artifact files that killed uploads left (bounded, idempotent)."""
    # Removals tolerate a concurrent run; the lock only saves a second run the listing work.
    lock_key = "flotilla:sweep-upload-leftovers"
    if not cache.add(lock_key, "1", timeout=600):
        return {"skipped": 1}
    try:
        result = sweep_upload_leftovers(limit=limit)
    finally:
        cache.delete(lock_key)
    return {
        "spool_files": result.spool_files,
        "orphaned_artifact_files": result.orphaned_artifact_files,
    }
