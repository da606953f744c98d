"""Admin pages of the accounts app: tokens without their hashes (delete revokes), lockouts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from config.accounts.models import AccessToken, LoginLockout
from config.accounts.services.tokens import issue_user_token
from config.accounts.tasks import purge_expired_access_tokens_task

pytestmark = pytest.mark.django_db

ME = "/api/management/v1/useradm/users/me"


@pytest.fixture
def admin_browser(django_user_model: Any) -> Client:
    root = django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password="root-pass-123"
    )
    browser = Client()
    browser.force_login(root)
    return browser


def test_the_token_list_shows_tokens_but_never_their_hashes(
    admin_browser: Client, operator: Any
) -> None:
    issue_user_token(user=operator)
    token = AccessToken.objects.get()

    listing = admin_browser.get("/admin/accounts/accesstoken/")
    detail = admin_browser.get(f"/admin/accounts/accesstoken/{token.pk}/change/")

    assert listing.status_code == 200
    assert b"ops@example.com" in listing.content
    assert detail.status_code == 200
    assert token.token_hash.encode() not in listing.content + detail.content


def test_deleting_a_token_in_the_admin_revokes_it(
    admin_browser: Client, operator: Any
) -> None:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_user_token(user=operator)}")
    token = AccessToken.objects.get(user=operator)

    response = admin_browser.post(
        f"/admin/accounts/accesstoken/{token.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert api.get(ME).status_code == 401


def test_the_lockout_list_tells_active_from_expired_lockouts(
    admin_browser: Client,
) -> None:
    now = timezone.now()
    LoginLockout.objects.create(
        scope="account", subject="locked@example.com", failures=10,
        locked_until=now + dt.timedelta(minutes=10),
    )  # fmt: skip
    LoginLockout.objects.create(
        scope="address", subject="192.0.2.1", failures=31,
        locked_at=now - dt.timedelta(hours=1), locked_until=now - dt.timedelta(minutes=1),
    )  # fmt: skip

    page = admin_browser.get("/admin/accounts/loginlockout/")

    assert page.status_code == 200
    assert b"locked@example.com" in page.content
    assert b"192.0.2.1" in page.content
    assert page.content.count(b'alt="True"') == 1
    assert page.content.count(b'alt="False"') == 1
    assert admin_browser.get("/admin/accounts/loginlockout/add/").status_code == 403


def test_the_purge_task_removes_expired_tokens(operator: Any) -> None:
    issue_user_token(user=operator)
    AccessToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    assert purge_expired_access_tokens_task(limit=10) == 1
    assert not AccessToken.objects.exists()


def test_a_password_change_in_the_admin_revokes_the_users_tokens(
    admin_browser: Client, operator: Any
) -> None:
    # given: the operator has a session token that works
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_user_token(user=operator)}")
    assert api.get(ME).status_code == 200

    # when: an administrator sets a new password on the admin's "change password" page
    changed = admin_browser.post(
        f"/admin/auth/user/{operator.pk}/password/",
        {"password1": "an-admin-chosen-pass-9", "password2": "an-admin-chosen-pass-9"},
    )

    # then: the password changed and the old token is refused on its next request
    assert changed.status_code == 302
    operator.refresh_from_db()
    assert operator.check_password("an-admin-chosen-pass-9")
    assert api.get(ME).status_code == 401
    assert AccessToken.objects.filter(user_id=operator.pk).count() == 0
