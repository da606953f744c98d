"""Revocation through the real server: the next request with a revoked token is 401."""

from __future__ import annotations

from typing import Any

import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)

LOGIN = "/api/management/v1/useradm/auth/login"
LOGOUT = "/api/management/v1/useradm/auth/logout"
ME = "/api/management/v1/useradm/users/me"
TOKENS = "/api/management/v1/useradm/settings/tokens"
DEVICES = "/api/management/v2/devauth/devices"
EMAIL = "live@example.com"
PASSWORD = "live-pass-123"


@pytest.fixture
def live_user(transactional_db: None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        username=EMAIL, email=EMAIL, password=PASSWORD
    )


class Session:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.base_url}{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
            **kwargs,
        )


def _login(base_url: str, password: str = PASSWORD) -> Session:
    response = requests.post(f"{base_url}{LOGIN}", auth=(EMAIL, password), timeout=10)
    assert response.status_code == 200, response.text
    return Session(base_url, response.text)


def test_password_change_revokes_every_other_token_at_once(
    live_server_url: str, live_user: Any
) -> None:
    # given: two logins and a personal access token
    acting = _login(live_server_url)
    other = _login(live_server_url)
    created = acting.request("POST", TOKENS, json={"name": "ci", "expires_in": 600})
    assert created.status_code == 200, created.text
    pat = Session(live_server_url, created.text)
    assert pat.request("GET", DEVICES).status_code == 200
    assert other.request("GET", DEVICES).status_code == 200

    # when
    changed = acting.request(
        "PUT", ME, json={"password": "new-live-pass", "current_password": PASSWORD}
    )

    # then: the very next requests with the old tokens are refused
    assert changed.status_code == 204, changed.text
    assert other.request("GET", DEVICES).status_code == 401
    assert pat.request("GET", DEVICES).status_code == 401
    assert acting.request("GET", DEVICES).status_code == 200
    assert (
        _login(live_server_url, "new-live-pass").request("GET", ME).status_code == 200
    )


def test_logout_refuses_the_token_on_the_next_request(
    live_server_url: str, live_user: Any
) -> None:
    session = _login(live_server_url)
    assert session.request("GET", ME).status_code == 200

    logout = session.request("POST", LOGOUT)

    assert logout.status_code == 202
    refused = session.request("GET", ME)
    assert refused.status_code == 401
    assert set(refused.json()) == {"error", "request_id"}


def test_revoked_or_orphaned_personal_access_tokens_are_refused(
    live_server_url: str, live_user: Any
) -> None:
    from django.contrib.auth import get_user_model

    from config.accounts.models import AccessToken

    session = _login(live_server_url)
    first = Session(
        live_server_url, session.request("POST", TOKENS, json={"name": "a"}).text
    )
    second = Session(
        live_server_url, session.request("POST", TOKENS, json={"name": "b"}).text
    )
    first_id = AccessToken.objects.get(name="a").pk
    assert first.request("GET", ME).status_code == 200

    assert session.request("DELETE", f"{TOKENS}/{first_id}").status_code == 204
    assert first.request("GET", ME).status_code == 401
    assert second.request("GET", ME).status_code == 200

    get_user_model().objects.filter(pk=live_user.pk).update(is_active=False)
    assert second.request("GET", ME).status_code == 401
    get_user_model().objects.filter(pk=live_user.pk).update(is_active=True)
    assert second.request("GET", ME).status_code == 200

    get_user_model().objects.filter(pk=live_user.pk).delete()
    assert second.request("GET", ME).status_code == 401
