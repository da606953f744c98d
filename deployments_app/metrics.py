"""Deployment gauges for /metrics (listed in settings.FLOTILLA_METRICS_COLLECTORS)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from config.metrics import status_gauge
from deployments_app.models import Deployment, DeviceDeployment
from deployments_app.states import DeploymentStatus, DeviceDeploymentStatus


def deployment_metric_families() -> Iterator[Metric]:
    """Deployments by status, and the (not deleted) device deployments by status."""
    yield status_gauge(
        "flotilla_deployments",
        "Deployments by status.",
        rows=Deployment.objects.all(),
        statuses=DeploymentStatus.values,
    )
    yield status_gauge(
        "flotilla_device_deployments",
        "Device deployments (one device's part in a deployment) by status.",
        rows=DeviceDeployment.objects.filter(deleted__isnull=True),
        statuses=DeviceDeploymentStatus.values,
    )
