"""Scheduled work on phased rollouts (run by Celery beat).

Admission never waits for this: it compares phase start times with the clock at poll
time. This records when each phase opened and moves scheduled deployments on.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Exists, OuterRef

from deployments_app.models import Deployment, DeploymentPhase
from deployments_app.services.transitions import set_deployment_status
from deployments_app.states import DeploymentStatus


def advance_phased_rollouts(*, now: dt.datetime, limit: int) -> dict[str, int]:
    """Mark up to ``limit`` due phases started and move due scheduled deployments to pending."""
    with transaction.atomic():
        due_phase_ids = list(
            DeploymentPhase.objects.filter(started_at__isnull=True, start_ts__lte=now)
            .exclude(deployment__status=DeploymentStatus.FINISHED)
            .order_by("start_ts")
            .values_list("pk", flat=True)[:limit]
        )
        opened = DeploymentPhase.objects.filter(
            pk__in=due_phase_ids, started_at__isnull=True
        ).update(started_at=now)
        started_phase = DeploymentPhase.objects.filter(
            deployment_id=OuterRef("pk"), start_ts__lte=now
        )
        due_deployments = list(
            Deployment.objects.filter(status=DeploymentStatus.SCHEDULED)
            .filter(Exists(started_phase))
            .order_by("created")
            .values_list("pk", flat=True)[:limit]
        )
        # Only from scheduled: a deployment a device already moved on stays where it is.
        moved = set_deployment_status(
            deployment_ids=due_deployments,
            to=DeploymentStatus.PENDING,
            only_from=[DeploymentStatus.SCHEDULED],
        )
    return {"phases_opened": opened, "deployments_started": moved}
