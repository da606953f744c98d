"""config.ratelimits: shared Redis counters, the address they count by, Redis outages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import RequestFactory

from config.ratelimits import RateLimit, client_address, count_hit


@pytest.fixture
def fresh_prefix(settings: Any) -> None:
    settings.RATELIMIT_CACHE_PREFIX = f"flotilla-rl-test-{uuid.uuid4().hex}:"


@pytest.mark.usefixtures("fresh_prefix")
def test_count_hit_counts_per_key_and_reads_without_counting(settings: Any) -> None:
    settings.FLOTILLA_RATELIMIT_LOGIN_GLOBAL = "2/d"

    hits = [count_hit(RateLimit.LOGIN_GLOBAL, key="a") for _ in range(3)]
    read = count_hit(RateLimit.LOGIN_GLOBAL, key="a", increment=False)
    other = count_hit(RateLimit.LOGIN_GLOBAL, key="b")

    assert read is not None  # the limit is on
    assert other is not None
    assert [(u.count, u.is_exceeded) for u in hits if u is not None] == [
        (1, False),
        (2, False),
        (3, True),
    ]
    assert (read.count, read.limit) == (3, 2)
    assert 1 <= read.retry_after <= 24 * 3600
    assert other.count == 1


def test_an_empty_rate_turns_the_limit_off(settings: Any) -> None:
    settings.FLOTILLA_RATELIMIT_LOGIN_GLOBAL = ""

    assert count_hit(RateLimit.LOGIN_GLOBAL, key="a") is None


def test_a_redis_outage_lets_requests_through(settings: Any, caplog: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        },
    }

    assert count_hit(RateLimit.LOGIN_GLOBAL, key="a") is None
    assert "Redis unavailable" in caplog.text


@pytest.mark.parametrize(
    ("meta", "header", "expected"),
    [
        ({"REMOTE_ADDR": "192.0.2.7"}, "", "192.0.2.7"),
        ({"REMOTE_ADDR": "2001:db8:1:2:3:4:5:6"}, "", "2001:db8:1:2::"),
        (
            {
                "REMOTE_ADDR": "10.0.0.1",
                "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.4",
            },
            "HTTP_X_FORWARDED_FOR",
            "198.51.100.4",  # the address the proxy appended, not what the client claimed
        ),
        ({"REMOTE_ADDR": "10.0.0.1"}, "HTTP_X_FORWARDED_FOR", "10.0.0.1"),
        ({"REMOTE_ADDR": ""}, "", "unknown"),
    ],
)
def test_client_address(settings: Any, meta: dict, header: str, expected: str) -> None:
    settings.FLOTILLA_RATELIMIT_IP_HEADER = header
    request = RequestFactory().get("/", **meta)

    assert client_address(request) == expected
