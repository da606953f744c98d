"""Event counters kept in Redis, so every web process adds to the same total (read by /metrics)."""

from __future__ import annotations

import logging
from functools import cache
from typing import cast

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

RATE_LIMIT_REJECTIONS_KEY = "flotilla:metrics:rate_limit_rejections"


@cache
def redis_client(url: str) -> redis.Redis:
    """A shared client for ``url`` with short timeouts (counters must never stall a request)."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def record_rate_limit_rejection(*, scope: str) -> None:
    """Count one request refused by a rate limit (``scope`` names the limit, e.g. ``login``).

    Never raises: a Redis outage loses the count, not the 429.
    """
    try:
        redis_client(settings.REDIS_URL).hincrby(RATE_LIMIT_REJECTIONS_KEY, scope, 1)
    except redis.RedisError:
        logger.warning(
            "could not count a rate-limit rejection (%s)", scope, exc_info=True
        )


def rate_limit_rejections() -> dict[str, int]:
    """Rejections counted so far, by scope."""
    # The client does not decode responses (no decode_responses), so the hash comes back as bytes.
    counts = cast(
        "dict[bytes, bytes]",
        redis_client(settings.REDIS_URL).hgetall(RATE_LIMIT_REJECTIONS_KEY),
    )
    return {scope.decode(): int(count) for scope, count in counts.items()}
