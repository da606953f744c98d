"""Finalisation by a real worker: finished within 2 s of the last final report, never before."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from deployments_app.models import Deployment
from tests import factories
from tests.deployments_app.engine_helpers import (
    create_deployment,
    install,
    poll,
    report,
)
from tests.fixtures.celery_worker import CeleryWorker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_worker_finishes_deployment_within_two_seconds_of_last_report(
    celery_worker: CeleryWorker, management_client: APIClient
) -> None:
    client = APIClient()
    finalisations_before = celery_worker.log_text().count("finalise_deployment_task")
    (d1, t1), (d2, t2) = factories.bulk_accepted_devices(2, prefix="fin")
    factories.artifact("v2", ["probe-device"])
    deployment_id = create_deployment(
        management_client,
        name="r",
        artifact_name="v2",
        devices=[str(d1.id), str(d2.id)],
    )
    celery_worker.wait_for(
        lambda: Deployment.objects.filter(
            pk=deployment_id, expanded_at__isnull=False
        ).exists(),
        timeout=20,
        description="the worker to expand the deployment",
    )
    assert poll(client, t1, "v1").status_code == 200
    assert poll(client, t2, "v1").status_code == 200
    install(client, t1, deployment_id)
    assert report(client, t2, deployment_id, "installing").status_code == 204

    # one device still active: the finalisation tasks (after expansion, after d1's success)
    # have run and left the deployment unfinished
    celery_worker.wait_for(
        lambda: (
            celery_worker.log_text().count("finalise_deployment_task")
            >= finalisations_before + 4
        ),
        timeout=10,
        description="two finalisation tasks to be received and to succeed",
    )
    assert Deployment.objects.get(pk=deployment_id).status == "inprogress"

    assert report(client, t2, deployment_id, "success").status_code == 204
    reported_at = time.monotonic()
    celery_worker.wait_for(
        lambda: Deployment.objects.filter(pk=deployment_id, status="finished").exists(),
        timeout=10,
        interval=0.05,
        description="the deployment to finish",
    )
    assert time.monotonic() - reported_at < 2.0
