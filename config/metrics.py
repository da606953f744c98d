"""Prometheus metrics at ``/metrics`` (prometheus-client's text format).

Every value is read at scrape time from the shared stores, so any number of web processes
give the same answer and nothing needs prometheus-client's multi-process mode: row counts by
status come from PostgreSQL (collectors listed in ``FLOTILLA_METRICS_COLLECTORS``), the Celery
queue depth and the rate-limit rejection counter (config.counters) from Redis. Access needs the bearer token
``FLOTILLA_METRICS_TOKEN`` or a client address in ``FLOTILLA_METRICS_ALLOWED_NETWORKS``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from redis.exceptions import RedisError

from config import queues
from config.api.errors import error_body
from config.counters import rate_limit_rejections, redis_client

logger = logging.getLogger(__name__)

# kombu's Redis transport keeps a queue's priorities 1-9 in lists named "<queue>\x06\x16<step>".
_KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
_KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


def celery_queue_depth(*, queue: str) -> int:
    """Messages waiting in a Celery queue on the Redis broker (all priority levels)."""
    client = redis_client(settings.CELERY_BROKER_URL)
    keys = [
        queue if step == 0 else f"{queue}{_KOMBU_PRIORITY_SEPARATOR}{step}"
        for step in _KOMBU_PRIORITY_STEPS
    ]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(key)
        return sum(pipe.execute())


def _broker_families() -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "flotilla_celery_queue_depth",
        "Celery messages waiting in the broker, by queue.",
        labels=["queue"],
    )
    for queue in queues.ALL_QUEUES:
        depth.add_metric([queue], celery_queue_depth(queue=queue))
    yield depth
    rejections = CounterMetricFamily(
        "flotilla_rate_limit_rejections",
        "Requests refused by a rate limit (HTTP 429), by limit.",
        labels=["scope"],
    )
    for scope, count in sorted(rate_limit_rejections().items()):
        rejections.add_metric([scope], count)
    yield rejections


class FlotillaCollector(Collector):
    """Collects Flotilla's gauges and counters from PostgreSQL and Redis on each scrape."""

    def collect(self) -> Iterator[Metric]:
        for path in settings.FLOTILLA_METRICS_COLLECTORS:
            families: Callable[[], Iterable[Metric]] = import_string(path)
            yield from families()
        try:
            # Materialised here so that a Redis outage drops only the broker families.
            broker = list(_broker_families())
        except RedisError as exc:
            logger.warning(
                "metrics: Redis unavailable, broker metrics left out: %s", exc
            )
            broker = []
        yield from broker


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlotillaCollector())
    return registry


def is_metrics_client_allowed(request: HttpRequest) -> bool:
    """Whether the request bears the metrics token or comes from an allowed network."""
    token = settings.FLOTILLA_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.FLOTILLA_METRICS_ALLOWED_NETWORKS
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """``GET /metrics`` in the Prometheus text format; 403 unless allowed (see module doc)."""
    if not is_metrics_client_allowed(request):
        return JsonResponse(
            error_body("metrics need the metrics token or an allowed address", request),
            status=403,
        )
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def status_gauge(
    name: str, documentation: str, *, rows: QuerySet[Any], statuses: Iterable[str]
) -> GaugeMetricFamily:
    """A gauge of ``rows`` counted by their ``status`` (0 for a known status without rows)."""
    counts = dict(
        rows.order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    gauge = GaugeMetricFamily(name, documentation, labels=["status"])
    for status in statuses:
        gauge.add_metric([status], counts.get(status, 0))
    return gauge
