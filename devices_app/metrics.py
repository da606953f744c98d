"""Device gauges for /metrics (listed in settings.FLOTILLA_METRICS_COLLECTORS)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from config.metrics import status_gauge
from devices_app.models import Device
from devices_app.states import DeviceStatus


def device_metric_families() -> Iterator[Metric]:
    """Devices by status (``status="pending"`` are the devices waiting for an operator)."""
    yield status_gauge(
        "flotilla_devices",
        "Devices by authentication status.",
        rows=Device.objects.all(),
        statuses=DeviceStatus.values,
    )
