"""Admission caps hold under concurrent polls through the real server process."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from deployments_app.models import DeviceDeployment
from deployments_app.services.creation import PhaseRequest, create_deployment
from deployments_app.services.transitions import abort_deployment
from devices_app.services.filters import create_device_filter
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

DEVICES = 500
CAP = 100
ROUNDS = 5


def poll_all(base_url: str, tokens: list[str]) -> list[int]:
    """Every device polls once, all released at the same instant; returns the status codes."""
    parts = urlsplit(base_url)
    body = json.dumps(
        {"device_provides": {"artifact_name": "v1", "device_type": "probe-device"}}
    )
    barrier = threading.Barrier(len(tokens))
    codes: list[int] = [0] * len(tokens)

    def run(index: int, token: str) -> None:
        connection_ = http.client.HTTPConnection(parts.netloc, timeout=120)
        barrier.wait()
        connection_.request(
            "POST",
            "/api/devices/v2/deployments/device/deployments/next",
            body=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token}",
            },
        )
        response = connection_.getresponse()
        response.read()
        codes[index] = response.status
        connection_.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def test_max_devices_admits_exactly_the_cap_under_concurrent_polls(
    live_server_url: str,
) -> None:
    devices = factories.bulk_accepted_devices(DEVICES, prefix="cap")
    tokens = [token for _, token in devices]
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE devices_app_device SET inventory = \'{"ring": "all"}\'::jsonb'
        )
    factories.artifact("v2", ["probe-device"])
    ring = create_device_filter(
        name="ring",
        terms=[
            {"scope": "inventory", "attribute": "ring", "type": "$eq", "value": "all"}
        ],
    )

    for round_number in range(ROUNDS):
        deployment = create_deployment(
            name=f"capped-{round_number}",
            artifact_name="v2",
            filter_id=ring.id,
            max_devices=CAP,
        )

        codes = poll_all(live_server_url, tokens)

        assert (codes.count(200), codes.count(204), len(codes)) == (
            CAP,
            DEVICES - CAP,
            DEVICES,
        )
        assert DeviceDeployment.objects.filter(deployment=deployment).count() == CAP
        deployment.refresh_from_db()
        assert deployment.device_count == CAP
        abort_deployment(deployment_id=deployment.pk)


def test_phase_capacity_admits_exactly_the_batch_under_concurrent_polls(
    live_server_url: str,
) -> None:
    devices = factories.bulk_accepted_devices(DEVICES, prefix="phase")
    tokens = [token for _, token in devices]
    factories.artifact("v2", ["probe-device"])
    later = timezone.now() + dt.timedelta(hours=1)

    for round_number in range(ROUNDS):
        deployment = create_deployment(
            name=f"phased-{round_number}",
            artifact_name="v2",
            devices=[str(device.id) for device, _ in devices],
            phases=[
                PhaseRequest(batch_size=20, start_ts=None),
                PhaseRequest(batch_size=None, start_ts=later),
            ],
        )

        codes = poll_all(live_server_url, tokens)

        assert (codes.count(200), codes.count(204)) == (CAP, DEVICES - CAP)
        admitted = DeviceDeployment.objects.filter(
            deployment=deployment, admitted_at__isnull=False
        )
        assert admitted.count() == CAP
        assert list(deployment.phases.values_list("device_count", flat=True)) == [
            CAP,
            0,
        ]
        abort_deployment(deployment_id=deployment.pk)
