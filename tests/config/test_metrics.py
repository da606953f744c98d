"""/metrics: Prometheus text with Flotilla's gauges, closed unless a token or network allows."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client, RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from config.counters import RATE_LIMIT_REJECTIONS_KEY, record_rate_limit_rejection
from deployments_app.states import DeploymentStatus, DeviceDeploymentStatus
from devices_app.models import Device
from devices_app.states import DeviceStatus

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def metrics_settings(settings: Any) -> Any:
    settings.FLOTILLA_METRICS_TOKEN = TOKEN
    settings.FLOTILLA_METRICS_ALLOWED_NETWORKS = []
    return settings


@pytest.fixture
def clean_redis() -> Any:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    client.delete(RATE_LIMIT_REJECTIONS_KEY, django_settings.CELERY_TASK_DEFAULT_QUEUE)
    yield client
    client.delete(RATE_LIMIT_REJECTIONS_KEY, django_settings.CELERY_TASK_DEFAULT_QUEUE)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _device(status: str, n: int) -> Device:
    return Device.objects.create(
        identity_data={"mac": f"00:00:{n:02x}"},
        identity_hash=f"{n:064x}",
        status=status,
    )


def test_metrics_report_rows_by_status_queue_depth_and_rejections(
    metrics_settings: Any, clean_redis: Any
) -> None:
    # given: 3 pending and 1 accepted device, 2 queued Celery messages, 3 rejections
    for n in range(3):
        _device(DeviceStatus.PENDING, n)
    _device(DeviceStatus.ACCEPTED, 9)
    clean_redis.lpush(django_settings.CELERY_TASK_DEFAULT_QUEUE, "m1", "m2")
    record_rate_limit_rejection(scope="login")
    record_rate_limit_rejection(scope="login")
    record_rate_limit_rejection(scope="auth_requests")

    # when
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    # then
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = _samples(response.content.decode())
    assert samples[("flotilla_devices", (("status", "pending"),))] == 3
    assert samples[("flotilla_devices", (("status", "accepted"),))] == 1
    assert samples[("flotilla_devices", (("status", "rejected"),))] == 0
    for status in DeploymentStatus.values:
        assert samples[("flotilla_deployments", (("status", status),))] == 0
    for status in DeviceDeploymentStatus.values:
        assert samples[("flotilla_device_deployments", (("status", status),))] == 0
    assert samples[("flotilla_celery_queue_depth", (("queue", "default"),))] == 2
    assert samples[("flotilla_rate_limit_rejections_total", (("scope", "login"),))] == 2
    assert (
        samples[("flotilla_rate_limit_rejections_total", (("scope", "auth_requests"),))]
        == 1
    )


def test_metrics_are_refused_without_the_token(
    metrics_settings: Any, clean_redis: Any
) -> None:
    anonymous = Client().get("/metrics")
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")

    for response in (anonymous, wrong):
        assert response.status_code == 403
        assert response.json()["error"] == (
            "metrics need the metrics token or an allowed address"
        )


def test_metrics_are_closed_by_default(settings: Any) -> None:
    settings.FLOTILLA_METRICS_TOKEN = ""
    settings.FLOTILLA_METRICS_ALLOWED_NETWORKS = []

    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_metrics_are_open_to_an_allowed_network(
    settings: Any, clean_redis: Any
) -> None:
    settings.FLOTILLA_METRICS_TOKEN = ""
    settings.FLOTILLA_METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]

    inside = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    outside = Client(REMOTE_ADDR="10.2.0.1").get("/metrics")

    assert inside.status_code == 200
    assert outside.status_code == 403


class _LoginView:
    throttle_scope = "login"


def test_a_drf_throttle_rejection_is_counted(clean_redis: Any) -> None:
    # given: DRF refusing a request of a view throttled under the "login" scope
    from rest_framework.exceptions import Throttled
    from rest_framework.request import Request

    from config.api.errors import exception_handler
    from config.counters import rate_limit_rejections

    request = Request(RequestFactory().post("/api/management/v1/useradm/auth/login"))

    # when
    response = exception_handler(
        Throttled(wait=7), {"request": request, "view": _LoginView()}
    )

    # then: 429 with Retry-After, and one more rejection on the counter /metrics reads
    assert response is not None
    assert response.status_code == 429
    assert response["Retry-After"] == "7"
    assert rate_limit_rejections() == {"login": 1}


def test_a_redis_outage_loses_the_count_not_the_request(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    record_rate_limit_rejection(scope="login")  # does not raise
