"""Mender's useradm users API: list/create/show/update/delete, ``me``, password rules, revocation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from config.accounts.models import AccessToken, UserProfile
from config.accounts.services.tokens import issue_user_token

pytestmark = pytest.mark.django_db

USERS = "/api/management/v1/useradm/users"


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_create_user_answers_201_with_location_and_the_user_can_log_in(
    management_client: APIClient,
) -> None:
    response = management_client.post(
        USERS,
        {"email": "New.User@Example.com", "password": "long-enough"},
        format="json",
    )

    assert response.status_code == 201, response.content
    user = get_user_model().objects.get(email="new.user@example.com")
    assert response["Location"] == f"users/{user.pk}"
    assert response.content == b""
    assert user.username == "new.user@example.com"
    assert user.check_password("long-enough")
    login = APIClient().post(
        "/api/management/v1/useradm/auth/login",
        HTTP_AUTHORIZATION="Basic bmV3LnVzZXJAZXhhbXBsZS5jb206bG9uZy1lbm91Z2g=",
    )
    assert login.status_code == 200


@pytest.mark.parametrize(
    ("body", "expected_status"),
    [
        ({"email": "ops@example.com", "password": "long-enough"}, 422),  # duplicate
        (
            {"email": "OPS@example.com", "password": "long-enough"},
            422,
        ),  # duplicate, case
        ({"email": "short@example.com", "password": "1234567"}, 422),  # < 8 characters
        ({"email": "not-an-email", "password": "long-enough"}, 400),
        ({"email": "nö@example.com", "password": "long-enough"}, 400),  # non-ASCII
        ({"password": "long-enough"}, 400),
        ({"email": "x@example.com"}, 400),
        ({"email": "x@example.com", "password": "p" * 4097}, 400),
    ],
)
def test_create_user_refuses_bad_input_and_creates_nothing(
    management_client: APIClient, operator: Any, body: dict, expected_status: int
) -> None:
    response = management_client.post(USERS, body, format="json")

    assert response.status_code == expected_status, response.content
    assert set(response.json()) == {"error", "request_id"}
    assert list(get_user_model().objects.values_list("pk", flat=True)) == [operator.pk]


def test_list_users_has_mender_shape_and_filters(
    management_client: APIClient, operator: Any
) -> None:
    management_client.post(
        USERS, {"email": "b@example.com", "password": "long-enough"}, format="json"
    )
    other = get_user_model().objects.get(email="b@example.com")
    past = operator.date_joined - dt.timedelta(days=2)
    get_user_model().objects.filter(pk=operator.pk).update(date_joined=past)

    everyone = management_client.get(USERS).json()
    by_email = management_client.get(USERS, {"email": "B@example.com"}).json()
    by_ids = management_client.get(f"{USERS}?id={operator.pk}&id={other.pk}").json()
    created_since = management_client.get(
        USERS, {"created_after": int((past + dt.timedelta(days=1)).timestamp())}
    ).json()
    bad = management_client.get(USERS, {"created_after": "yesterday"})

    assert [user["email"] for user in everyone] == ["ops@example.com", "b@example.com"]
    assert set(everyone[1]) == {"id", "email", "created_ts", "updated_ts"}
    assert everyone[1]["id"] == str(other.pk)
    assert everyone[1]["created_ts"].endswith("Z")
    assert [user["id"] for user in by_email] == [str(other.pk)]
    assert [user["id"] for user in by_ids] == [str(operator.pk), str(other.pk)]
    assert [user["id"] for user in created_since] == [str(other.pk)]
    assert bad.status_code == 400


def test_show_user_and_me_and_unknown(
    management_client: APIClient, operator: Any
) -> None:
    me = management_client.get(f"{USERS}/me")
    by_id = management_client.get(f"{USERS}/{operator.pk}")
    unknown = management_client.get(f"{USERS}/999999")
    garbage = management_client.get(f"{USERS}/not-an-id")

    assert me.status_code == 200
    assert me.json() == by_id.json()
    assert me.json()["email"] == "ops@example.com"
    assert me.json()["updated_ts"] == me.json()["created_ts"]
    assert unknown.status_code == 404
    assert garbage.status_code == 404
    assert set(unknown.json()) == {"error", "request_id"}


def test_changing_own_password_needs_the_current_one_and_revokes_other_tokens(
    operator: Any,
) -> None:
    # given: two sessions of the same user
    acting_token = issue_user_token(user=operator)
    other_token = issue_user_token(user=operator)
    acting = _client(acting_token)

    # when: a wrong current password, then the right one
    wrong = acting.put(
        f"{USERS}/me",
        {"password": "brand-new-pass", "current_password": "nope-nope"},
        format="json",
    )
    missing = acting.put(f"{USERS}/me", {"password": "brand-new-pass"}, format="json")
    assert AccessToken.objects.filter(user=operator).count() == 2
    right = acting.put(
        f"{USERS}/me",
        {"password": "brand-new-pass", "current_password": "secret-pass-123"},
        format="json",
    )

    # then
    assert wrong.status_code == 422
    assert wrong.json()["error"] == "current password mismatch"
    assert missing.status_code == 422
    assert right.status_code == 204
    operator.refresh_from_db()
    assert operator.check_password("brand-new-pass")
    assert acting.get(f"{USERS}/me").status_code == 200
    assert _client(other_token).get(f"{USERS}/me").status_code == 401
    assert AccessToken.objects.filter(user=operator).count() == 1
    profile = UserProfile.objects.get(user=operator)
    assert profile.updated_at > operator.date_joined


def test_nobody_changes_another_users_password_but_may_change_their_email(
    management_client: APIClient, operator: Any
) -> None:
    other = get_user_model().objects.create_user(
        username="o@example.com", email="o@example.com", password="other-pass-1"
    )
    other_token = issue_user_token(user=other)

    password = management_client.put(
        f"{USERS}/{other.pk}", {"password": "hijacked-pass"}, format="json"
    )
    email = management_client.put(
        f"{USERS}/{other.pk}", {"email": "renamed@example.com"}, format="json"
    )
    duplicate = management_client.put(
        f"{USERS}/{other.pk}", {"email": "ops@example.com"}, format="json"
    )
    missing = management_client.put(
        f"{USERS}/999999", {"email": "z@example.com"}, format="json"
    )

    assert password.status_code == 422
    assert password.json()["error"] == "password cannot be modified"
    assert email.status_code == 204
    assert duplicate.status_code == 422
    assert missing.status_code == 404
    other.refresh_from_db()
    assert (other.email, other.username) == (
        "renamed@example.com",
        "renamed@example.com",
    )
    assert other.check_password("other-pass-1")
    # the login name changed: the user's sessions end
    assert _client(other_token).get(f"{USERS}/me").status_code == 401
    assert management_client.get(f"{USERS}/me").status_code == 200


def test_changing_own_email_needs_the_current_password(operator: Any) -> None:
    client = _client(issue_user_token(user=operator))

    refused = client.put(f"{USERS}/me", {"email": "me2@example.com"}, format="json")
    accepted = client.put(
        f"{USERS}/me",
        {"email": "me2@example.com", "current_password": "secret-pass-123"},
        format="json",
    )

    assert refused.status_code == 422
    assert accepted.status_code == 204
    assert client.get(f"{USERS}/me").json()["email"] == "me2@example.com"


def test_delete_user_answers_204_and_their_tokens_stop_working(
    management_client: APIClient,
) -> None:
    other = get_user_model().objects.create_user(
        username="d@example.com", email="d@example.com", password="other-pass-1"
    )
    other_client = _client(issue_user_token(user=other))
    assert other_client.get(f"{USERS}/me").status_code == 200

    deleted = management_client.delete(f"{USERS}/{other.pk}")
    again = management_client.delete(f"{USERS}/{other.pk}")

    assert deleted.status_code == 204
    assert again.status_code == 204
    assert not get_user_model().objects.filter(pk=other.pk).exists()
    assert not AccessToken.objects.filter(user_id=other.pk).exists()
    assert other_client.get(f"{USERS}/me").status_code == 401


def test_a_deactivated_users_token_is_refused(operator: Any) -> None:
    client = _client(issue_user_token(user=operator))
    get_user_model().objects.filter(pk=operator.pk).update(is_active=False)

    response = client.get(f"{USERS}/me")

    assert response.status_code == 401
    assert set(response.json()) == {"error", "request_id"}


def test_login_sets_login_ts(operator: Any) -> None:
    login = APIClient().post(
        "/api/management/v1/useradm/auth/login",
        HTTP_AUTHORIZATION="Basic b3BzQGV4YW1wbGUuY29tOnNlY3JldC1wYXNzLTEyMw==",
    )

    me = _client(login.content.decode()).get(f"{USERS}/me").json()

    assert login.status_code == 200
    assert login["Content-Type"] == "application/jwt"
    assert "login_ts" in me
