"""DRF throttles backed by the shared Redis counters of ``config.ratelimits``.

DRF's own ``SimpleRateThrottle`` keeps a request history with a read-modify-write of one cache
key, so concurrent web processes overwrite each other's hits and let more through than the limit;
django-ratelimit's counters (``add`` + atomic ``incr``) do not, and also serve the plain Django
admin login. DRF answers a refused request with 429, ``Retry-After`` and our JSON error body.
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import BaseThrottle

from config.ratelimits import GLOBAL_KEY, RateLimit, client_address, count_hit


class RedisRateThrottle(BaseThrottle):
    """Counts every request against ``limit``, keyed by :meth:`key`."""

    limit: RateLimit

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def key(self, request: Any) -> str:
        return client_address(request)

    def allow_request(self, request: Any, view: Any) -> bool:
        usage = count_hit(self.limit, key=self.key(request), request=request)
        if usage is None or not usage.is_exceeded:
            return True
        self.retry_after = usage.retry_after
        return False

    def wait(self) -> float | None:
        return self.retry_after


class GlobalRateThrottle(RedisRateThrottle):
    def key(self, request: Any) -> str:
        return GLOBAL_KEY


class AuthRequestAddressThrottle(RedisRateThrottle):
    limit = RateLimit.AUTH_REQUESTS_PER_ADDRESS


class AuthRequestGlobalThrottle(GlobalRateThrottle):
    limit = RateLimit.AUTH_REQUESTS_GLOBAL


AUTH_REQUEST_THROTTLES = [AuthRequestAddressThrottle, AuthRequestGlobalThrottle]
