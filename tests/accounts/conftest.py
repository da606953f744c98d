from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def fresh_rate_limits(settings: object) -> str:
    """Rate-limit counters no earlier test (or run) has touched: a new key prefix in Redis."""
    prefix = f"flotilla-rl-test-{uuid.uuid4().hex}:"
    settings.RATELIMIT_CACHE_PREFIX = prefix  # type: ignore[attr-defined]
    return prefix
