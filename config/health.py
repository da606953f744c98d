"""Liveness (``/healthz``) and readiness (``/readyz``) probes.

``/healthz`` answers without touching anything: the process is up and serving. ``/readyz``
runs django-health-check's probes for PostgreSQL, Redis and a live Celery worker concurrently,
each with its own timeout, and answers 200 or 503 with every check's status and latency.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.contrib.celery import Ping
from health_check.contrib.redis import Redis
from health_check.views import HealthCheckView
from redis.asyncio import Redis as AsyncRedis

from config.celery import app as celery_app


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: constant, so a database or broker outage never gets the web process restarted."""
    return JsonResponse({"status": "ok"})


def readiness_checks() -> dict[str, HealthCheck]:
    """The dependencies a Flotilla web process needs to do useful work, by name."""
    timeout = dt.timedelta(seconds=settings.FLOTILLA_READYZ_TIMEOUT)
    return {
        "database": Database(),
        "redis": Redis(client_factory=lambda: AsyncRedis.from_url(settings.REDIS_URL)),
        # One answering worker is enough: without any, dispatched work never runs.
        "celery": Ping(app=celery_app, timeout=timeout, limit=1),
    }


class ReadinessView(HealthCheckView):
    """``GET /readyz``: 200 when every check passes, else 503; JSON with per-check latency."""

    async def get(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> JsonResponse:
        named = readiness_checks()
        with self.get_executor() as executor:
            results = await asyncio.gather(
                *(check.get_result(executor) for check in named.values())
            )
        checks: dict[str, dict[str, Any]] = {}
        for name, result in zip(named, results, strict=True):
            entry: dict[str, Any] = {
                "status": "unavailable" if result.error else "ok",
                "latency_ms": round(result.time_taken * 1000, 3),
            }
            if result.error:
                entry["error"] = str(result.error)
            checks[name] = entry
        is_ready = all(entry["status"] == "ok" for entry in checks.values())
        return JsonResponse(
            {"status": "ok" if is_ready else "unavailable", "checks": checks},
            status=200 if is_ready else 503,
        )


readyz = ReadinessView.as_view()
