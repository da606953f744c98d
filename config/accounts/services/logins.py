"""Password logins: constant work for known and unknown accounts, throttles and lockouts."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.utils import timezone

from config.accounts.exceptions import LoginThrottled
from config.accounts.models import LoginLockout
from config.counters import record_rate_limit_rejection
from config.ratelimits import GLOBAL_KEY, RateLimit, count_hit

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# Longer login names are not accounts anyway; bounds the counter key and the lockout row.
_MAX_LOGIN_LENGTH = 255
THROTTLED_MESSAGE = "too many login attempts, try again later"


def normalized_login(login: str) -> str:
    """The account key logins are counted by (how the user typed it, case-folded)."""
    return login.strip().lower()[:_MAX_LOGIN_LENGTH]


def authenticate_login(*, login: str, password: str) -> AbstractBaseUser | None:
    """The active user whose email (case-insensitive) or username is ``login``, if the password matches.

    The password hasher runs whether or not the account exists, so the answer time does not
    tell which logins are accounts.
    """
    users = get_user_model().objects.all()
    user = (
        users.filter(email__iexact=login).order_by("pk").first()
        or users.filter(username=login).first()
    )
    if user is None:
        # What Django's ModelBackend does for unknown users: hash the password anyway.
        get_user_model()().set_password(password)
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    return user


def record_login(*, user: AbstractBaseUser) -> None:
    """Mender's ``login_ts``: the time of the user's last successful login."""
    get_user_model().objects.filter(pk=user.pk).update(last_login=timezone.now())


def _lock(*, scope: str, subject: str, failures: int, seconds: int) -> None:
    now = timezone.now()
    LoginLockout.objects.create(
        scope=scope,
        subject=subject[:_MAX_LOGIN_LENGTH],
        failures=failures,
        locked_at=now,
        locked_until=now + dt.timedelta(seconds=seconds),
    )


def _refused(*, retry_after: int) -> LoginThrottled:
    # Counted here so that every refused login, API or admin, shows in /metrics.
    record_rate_limit_rejection(scope="login")
    return LoginThrottled(THROTTLED_MESSAGE, retry_after=retry_after)


def check_login_allowed(*, login: str, address: str) -> None:
    """Count this attempt for its address and globally; raise ``LoginThrottled`` when over a limit.

    An account that reached its failed-login limit is refused too, known or not, even with the
    right password, until its window ends.
    """
    address_usage = count_hit(RateLimit.LOGIN_PER_ADDRESS, key=address)
    global_usage = count_hit(RateLimit.LOGIN_GLOBAL, key=GLOBAL_KEY)
    if address_usage is not None and address_usage.is_exceeded:
        if address_usage.count == address_usage.limit + 1:
            _lock(
                scope=LoginLockout.Scope.ADDRESS,
                subject=address,
                failures=address_usage.count,
                seconds=address_usage.retry_after,
            )
        raise _refused(retry_after=address_usage.retry_after)
    if global_usage is not None and global_usage.is_exceeded:
        raise _refused(retry_after=global_usage.retry_after)
    account_usage = count_hit(
        RateLimit.LOGIN_FAILURES_PER_ACCOUNT,
        key=normalized_login(login),
        increment=False,
    )
    if account_usage is not None and account_usage.count >= account_usage.limit:
        raise _refused(retry_after=account_usage.retry_after)


def record_login_failure(*, login: str) -> None:
    """Count a wrong password for the account; the failure that reaches the limit locks it."""
    account = normalized_login(login)
    usage = count_hit(RateLimit.LOGIN_FAILURES_PER_ACCOUNT, key=account)
    if usage is not None and usage.count == usage.limit:
        _lock(
            scope=LoginLockout.Scope.ACCOUNT,
            subject=account,
            failures=usage.count,
            seconds=usage.retry_after,
        )
