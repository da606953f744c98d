"""Fixed-window request limits kept in Redis, so every web process shares the same counters.

Counting is django-ratelimit's (``get_usage``: an atomic ``add`` + ``incr`` per window in the
``ratelimit`` cache). The limits are settings (``FLOTILLA_RATELIMIT_*``, "count/period" such as
``"60/m"`` or ``"10/15m"``); an empty value turns that limit off.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class RateLimit(Enum):
    """Each limit: its counter group and the setting holding its rate."""

    AUTH_REQUESTS_PER_ADDRESS = "FLOTILLA_RATELIMIT_AUTH_REQUESTS_PER_ADDRESS"
    AUTH_REQUESTS_GLOBAL = "FLOTILLA_RATELIMIT_AUTH_REQUESTS_GLOBAL"
    LOGIN_PER_ADDRESS = "FLOTILLA_RATELIMIT_LOGIN_PER_ADDRESS"
    LOGIN_GLOBAL = "FLOTILLA_RATELIMIT_LOGIN_GLOBAL"
    LOGIN_FAILURES_PER_ACCOUNT = "FLOTILLA_RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT"

    @property
    def rate(self) -> str:
        return getattr(settings, self.value) or ""


@dataclass(frozen=True)
class RateUsage:
    count: int
    limit: int
    seconds_left: int

    @property
    def is_exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def retry_after(self) -> int:
        return max(self.seconds_left, 1)


GLOBAL_KEY = "all"


def count_hit(
    limit: RateLimit, *, key: str, request: Any = None, increment: bool = True
) -> RateUsage | None:
    """Count one hit of ``key`` against ``limit`` (or only read it); None when the limit is off.

    A Redis outage lets requests through (logged): refusing every login and device
    authentication while Redis is down would be worse than a pause in the limits.
    """
    rate = limit.rate
    if not rate:
        return None
    try:
        usage = get_usage(
            request,
            group=limit.name,
            key=lambda _group, _request: key,
            rate=rate,
            increment=increment,
        )
    except RedisError:
        logger.warning("rate limit %s not applied: Redis unavailable", limit.name)
        return None
    if usage is None:
        return None
    return RateUsage(
        count=usage["count"], limit=usage["limit"], seconds_left=usage["time_left"]
    )


def client_address(request: Any) -> str:
    """The source address limits are counted by (``FLOTILLA_RATELIMIT_IP_HEADER`` behind a proxy).

    IPv6 addresses count by their /64: one subscriber usually holds a whole /64.
    """
    address = ""
    header = settings.FLOTILLA_RATELIMIT_IP_HEADER
    if header:
        # The proxy appends the address it saw; anything left of it came from the client.
        address = request.META.get(header, "").split(",")[-1].strip()
    address = address or request.META.get("REMOTE_ADDR") or ""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False).network_address)
    return str(parsed)
