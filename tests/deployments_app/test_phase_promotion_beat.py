"""Phase promotion driven by a real Celery beat process and a real worker on the real broker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from deployments_app.models import Deployment, DeploymentPhase
from deployments_app.services.creation import PhaseRequest, create_deployment
from tests import factories
from tests.fixtures.celery_worker import (
    CeleryWorker,
    celery_process_env,
    start_celery_process,
    stop_process,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def beat(celery_worker: CeleryWorker, tmp_path: Path) -> Iterator[Path]:
    """A real beat process publishing the project's schedule (1 s phase interval) to the test broker."""
    log_path = tmp_path / "beat.log"
    env = celery_process_env(celery_worker.broker_url, FLOTILLA_PHASE_INTERVAL="1")
    process = start_celery_process(
        ["beat", "-l", "INFO", "-s", str(tmp_path / "beat-schedule")], env, log_path
    )
    try:
        yield log_path
    finally:
        stop_process(process)


def test_beat_starts_scheduled_deployment_and_opens_phases(
    celery_worker: CeleryWorker, beat: Path
) -> None:
    # given a phased rollout whose phases start in 2 s and 4 s
    devices = factories.bulk_accepted_devices(4, prefix="beat")
    factories.artifact("v2", ["probe-device"])
    now = timezone.now()
    deployment = create_deployment(
        name="scheduled",
        artifact_name="v2",
        devices=[str(device.id) for device, _ in devices],
        phases=[
            PhaseRequest(batch_size=50, start_ts=now + dt.timedelta(seconds=2)),
            PhaseRequest(batch_size=None, start_ts=now + dt.timedelta(seconds=4)),
        ],
    )
    assert deployment.status == "scheduled"

    # when beat runs the promotion on the worker, then the deployment starts and each phase opens
    celery_worker.wait_for(
        lambda: Deployment.objects.filter(pk=deployment.pk, status="pending").exists(),
        timeout=30,
        description="beat to move the deployment from scheduled to pending",
    )
    celery_worker.wait_for(
        lambda: (
            DeploymentPhase.objects.filter(
                deployment=deployment, started_at__isnull=False
            ).count()
            == 2
        ),
        timeout=30,
        description="both phases to be recorded as started",
    )
    phases = list(
        DeploymentPhase.objects.filter(deployment=deployment).order_by("number")
    )
    assert [
        phase.started_at is not None and phase.started_at >= phase.start_ts
        for phase in phases
    ] == [True, True]
    assert "advance_phased_rollouts_task" in celery_worker.log_text()
    assert "advance-phased-rollouts" in beat.read_text()
