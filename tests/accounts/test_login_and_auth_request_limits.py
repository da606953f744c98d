"""Rate limits on logins (useradm and admin) and device auth requests; lockouts; no timing oracle.

Counters live in Redis (the ``ratelimit`` cache); each test gets fresh ones (``fresh_rate_limits``)
and sets small limits through the settings, per day: a fixed window that ended during a test
would reset its counters, and a day makes that practically impossible.
"""

from __future__ import annotations

import base64
import statistics
import time
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import Client
from rest_framework.test import APIClient

from config.accounts.models import AccessToken, LoginLockout
from config.accounts.services.logins import authenticate_login
from devices_app.models import Device

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rate_limits")]

LOGIN = "/api/management/v1/useradm/auth/login"
AUTH_REQUESTS = "/api/devices/v1/authentication/auth_requests"
ADMIN_LOGIN = "/admin/login/"
DAY = 24 * 3600


def _basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def _login(login: str, password: str, address: str = "10.0.0.1") -> Any:
    return APIClient().post(
        LOGIN, HTTP_AUTHORIZATION=_basic(login, password), REMOTE_ADDR=address
    )


def _auth_request(address: str) -> Any:
    return APIClient().post(
        AUTH_REQUESTS,
        data=b'{"id_data": "{\\"mac\\": \\"00:11\\"}", "pubkey": "x"}',
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def _assert_throttled(response: Any, window: int) -> None:
    assert response.status_code == 429, response.content
    assert 1 <= int(response["Retry-After"]) <= window
    body = response.json()
    assert set(body) == {"error", "request_id"}


def test_auth_requests_are_limited_per_source_address(settings: Any) -> None:
    settings.FLOTILLA_RATELIMIT_AUTH_REQUESTS_PER_ADDRESS = "3/d"

    answers = [_auth_request("10.1.0.1").status_code for _ in range(3)]
    refused = _auth_request("10.1.0.1")
    other_address = _auth_request("10.1.0.2")

    assert answers == [400, 400, 400]  # unsigned: refused by the view, but counted
    _assert_throttled(refused, DAY)
    assert other_address.status_code == 400
    assert Device.objects.count() == 0


def test_auth_requests_are_limited_globally(settings: Any) -> None:
    settings.FLOTILLA_RATELIMIT_AUTH_REQUESTS_GLOBAL = "4/d"

    answers = [_auth_request(f"10.2.0.{n}").status_code for n in range(4)]
    refused = _auth_request("10.2.0.99")

    assert answers == [400] * 4
    _assert_throttled(refused, DAY)


def test_logins_are_limited_per_source_address(operator: Any, settings: Any) -> None:
    settings.FLOTILLA_RATELIMIT_LOGIN_PER_ADDRESS = "3/d"

    answers = [
        _login("ops@example.com", "wrong", "10.3.0.1").status_code for _ in range(3)
    ]
    refused = _login("ops@example.com", "secret-pass-123", "10.3.0.1")
    elsewhere = _login("ops@example.com", "secret-pass-123", "10.3.0.2")

    assert answers == [401, 401, 401]
    _assert_throttled(refused, DAY)
    assert elsewhere.status_code == 200
    lockout = LoginLockout.objects.get()
    assert (lockout.scope, lockout.subject) == ("address", "10.3.0.1")
    assert AccessToken.objects.count() == 1  # only the login from the other address


def test_logins_are_limited_globally(operator: Any, settings: Any) -> None:
    settings.FLOTILLA_RATELIMIT_LOGIN_GLOBAL = "2/d"

    answers = [
        _login("ops@example.com", "wrong", f"10.4.0.{n}").status_code for n in range(2)
    ]
    refused = _login("ops@example.com", "secret-pass-123", "10.4.0.9")

    assert answers == [401, 401]
    _assert_throttled(refused, DAY)


@pytest.mark.parametrize("login", ["ops@example.com", "nobody@example.com"])
def test_failed_logins_lock_the_account_known_or_not(
    operator: Any, settings: Any, login: str
) -> None:
    settings.FLOTILLA_RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT = "3/d"

    # given: three wrong passwords from three addresses
    answers = [_login(login, "wrong", f"10.5.0.{n}").status_code for n in range(3)]

    # when: the right password (for the known account) from a fresh address
    locked = _login(login, "secret-pass-123", "10.5.0.50")
    other_account = _login("OTHER@example.com", "wrong", "10.5.0.51")

    # then: refused the same way for both, until the window ends
    assert answers == [401, 401, 401]
    _assert_throttled(locked, DAY)
    assert other_account.status_code == 401
    lockout = LoginLockout.objects.get()
    assert (lockout.scope, lockout.subject, lockout.failures) == ("account", login, 3)
    assert lockout.is_active
    assert AccessToken.objects.count() == 0


def test_successful_logins_do_not_count_as_failures(
    operator: Any, settings: Any
) -> None:
    settings.FLOTILLA_RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT = "2/d"

    answers = [
        _login("ops@example.com", "secret-pass-123").status_code for _ in range(4)
    ]

    assert answers == [200] * 4
    assert not LoginLockout.objects.exists()


def test_the_admin_login_shares_the_account_lockout_and_shows_it(
    django_user_model: Any, settings: Any
) -> None:
    settings.FLOTILLA_RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT = "2/d"
    django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password="root-pass-123"
    )
    attacker = Client(REMOTE_ADDR="10.6.0.1")
    credentials = {"username": "root", "password": "wrong", "next": "/admin/"}

    answers = [attacker.post(ADMIN_LOGIN, credentials).status_code for _ in range(2)]
    locked = attacker.post(ADMIN_LOGIN, {**credentials, "password": "root-pass-123"})
    api_locked = _login("root", "root-pass-123", "10.6.0.2")

    assert answers == [200, 200]  # the form again, with its error
    assert locked.status_code == 429
    assert 1 <= int(locked["Retry-After"]) <= DAY
    assert "_auth_user_id" not in attacker.session
    assert api_locked.status_code == 429
    # the operator (from elsewhere, another account) sees the lockout in the admin
    settings.FLOTILLA_RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT = "1000/d"
    django_user_model.objects.create_superuser(
        username="ops2", email="ops2@example.com", password="ops2-pass-123"
    )
    operator_browser = Client(REMOTE_ADDR="10.6.0.3")
    logged_in = operator_browser.post(
        ADMIN_LOGIN,
        {"username": "ops2", "password": "ops2-pass-123", "next": "/admin/"},
    )
    assert logged_in.status_code == 302
    page = operator_browser.get("/admin/accounts/loginlockout/")
    assert page.status_code == 200
    assert b"root" in page.content
    assert b"Account" in page.content


class _TimingPBKDF2Hasher(PBKDF2PasswordHasher):
    """Cheap enough for a test, dear enough (tens of ms) that skipping it would show."""

    iterations = 50_000


def test_unknown_and_known_logins_take_the_same_time(
    django_user_model: Any, settings: Any
) -> None:
    settings.PASSWORD_HASHERS = [
        f"{_TimingPBKDF2Hasher.__module__}.{_TimingPBKDF2Hasher.__qualname__}"
    ]
    django_user_model.objects.create_user(
        username="timed@example.com", email="timed@example.com", password="timed-pass-1"
    )

    def elapsed(login: str) -> float:
        # The login check itself: the HTTP round trip around it would drown the difference.
        started = time.perf_counter()
        assert authenticate_login(login=login, password="wrong-password") is None
        return time.perf_counter() - started

    # interleaved, so load on the machine hits both alike; medians ignore outliers
    known, unknown = [], []
    for _ in range(11):
        known.append(elapsed("timed@example.com"))
        unknown.append(elapsed("nobody-here@example.com"))
    ratio = statistics.median(unknown) / statistics.median(known)

    assert 0.5 <= ratio <= 2.0, (ratio, known, unknown)
