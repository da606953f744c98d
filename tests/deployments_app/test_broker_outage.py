"""A deployment created while the broker is down is expanded by the sweep once it is back."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from deployments_app.models import Deployment, DeviceDeployment
from deployments_app.tasks import sweep_deployments_task
from tests import factories
from tests.deployments_app.engine_helpers import DEPLOYMENTS, set_group

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def broker_down() -> Iterator[None]:
    """Point this process's Celery app at a port where no broker listens (not eager)."""
    from config.celery import app

    saved = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url, app.conf.task_always_eager = "redis://127.0.0.1:1/0", False
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
        app._pool = None
        app.amqp._producer_pool = None


def test_creation_survives_broker_outage_and_sweep_expands_later(
    management_client: APIClient, settings: Any
) -> None:
    devices = [factories.accepted_device(f"02:00:00:00:40:0{i}")[0] for i in range(2)]
    for device in devices:
        set_group(management_client, device.id, "fleet")
    factories.artifact("release-1", ["probe-device"])

    with broker_down():
        started = time.monotonic()
        response = management_client.post(
            f"{DEPLOYMENTS}/group/fleet",
            {"name": "r", "artifact_name": "release-1"},
            format="json",
        )
        elapsed = time.monotonic() - started

    assert response.status_code == 201
    # kombu's default connect retries would stall the request for 6 s and more
    assert elapsed < 3.0
    deployment_id = response["Location"].rsplit("/", 1)[-1]
    assert Deployment.objects.get(pk=deployment_id).expanded_at is None
    assert DeviceDeployment.objects.count() == 0

    # the broker is back (eager here); the periodic sweep finds the unexpanded deployment
    settings.FLOTILLA_EXPANSION_GRACE_SECONDS = 0
    result = sweep_deployments_task()

    assert result["expansions"] == 1
    deployment = Deployment.objects.get(pk=deployment_id)
    assert deployment.expanded_at is not None
    assert set(DeviceDeployment.objects.values_list("device_id", flat=True)) == {
        d.id for d in devices
    }
