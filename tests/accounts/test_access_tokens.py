"""Personal access tokens and logout: shown once, stored as a hash, revoked at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from config.accounts.models import AccessToken, TokenKind
from config.accounts.services.tokens import issue_user_token, purge_expired_tokens
from config.api.tokens import USER_CLAIM, issue_token

pytestmark = pytest.mark.django_db

TOKENS = "/api/management/v1/useradm/settings/tokens"
ME = "/api/management/v1/useradm/users/me"
LOGOUT = "/api/management/v1/useradm/auth/logout"
DEVICES = "/api/management/v2/devauth/devices"


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_personal_access_token_is_shown_once_stored_as_a_hash_and_works_everywhere(
    management_client: APIClient, operator: Any
) -> None:
    created = management_client.post(
        TOKENS, {"name": "ci", "expires_in": 3600}, format="json"
    )

    assert created.status_code == 200, created.content
    assert created["Content-Type"] == "application/jwt"
    token = created.content.decode()
    row = AccessToken.objects.get(kind=TokenKind.PERSONAL)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(AccessToken.objects.filter(pk=row.pk).values().get())
    assert row.expires_at is not None
    assert row.expires_at - row.created_at == dt.timedelta(seconds=3600)
    listing = management_client.get(TOKENS).json()
    assert listing == [
        {
            "id": str(row.pk),
            "name": "ci",
            "created_ts": listing[0]["created_ts"],
            "expiration_date": listing[0]["expiration_date"],
        }
    ]
    pat = _client(token)
    assert pat.get(ME).json()["id"] == str(operator.pk)
    assert pat.get(DEVICES).status_code == 200
    assert pat.get("/api/management/v1/deployments/deployments").status_code == 200


def test_a_token_without_expiry_has_no_expiration_date(
    management_client: APIClient,
) -> None:
    created = management_client.post(TOKENS, {"name": "forever"}, format="json")

    assert created.status_code == 200
    claims = jwt.decode(created.content, options={"verify_signature": False})
    assert "exp" not in claims
    assert "expiration_date" not in management_client.get(TOKENS).json()[0]
    assert _client(created.content.decode()).get(ME).status_code == 200


def test_revoking_a_personal_access_token_refuses_it_at_once(
    management_client: APIClient,
) -> None:
    token = management_client.post(TOKENS, {"name": "ci"}, format="json").content
    pat = _client(token.decode())
    token_id = AccessToken.objects.get(kind=TokenKind.PERSONAL).pk
    assert pat.get(ME).status_code == 200

    deleted = management_client.delete(f"{TOKENS}/{token_id}")
    unknown = management_client.delete(f"{TOKENS}/{uuid.uuid4()}")
    garbage = management_client.delete(f"{TOKENS}/garbage")

    assert (deleted.status_code, unknown.status_code, garbage.status_code) == (
        204,
        204,
        204,
    )
    assert pat.get(ME).status_code == 401
    assert management_client.get(TOKENS).json() == []


def test_nobody_revokes_another_users_personal_access_token(
    management_client: APIClient, django_user_model: Any
) -> None:
    other = django_user_model.objects.create_user(
        username="o@example.com", email="o@example.com", password="other-pass-1"
    )
    other_client = _client(issue_user_token(user=other))
    other_pat = other_client.post(TOKENS, {"name": "mine"}, format="json").content
    token_id = AccessToken.objects.get(kind=TokenKind.PERSONAL).pk

    response = management_client.delete(f"{TOKENS}/{token_id}")

    assert response.status_code == 204
    assert _client(other_pat.decode()).get(ME).status_code == 200
    assert management_client.get(TOKENS).json() == []


def test_personal_access_token_rules(
    management_client: APIClient, settings: Any
) -> None:
    settings.FLOTILLA_PAT_LIMIT_PER_USER = 2
    first = management_client.post(TOKENS, {"name": "a"}, format="json")
    duplicate = management_client.post(TOKENS, {"name": "a"}, format="json")
    second = management_client.post(TOKENS, {"name": "b"}, format="json")
    too_many = management_client.post(TOKENS, {"name": "c"}, format="json")
    too_long_lived = management_client.post(
        TOKENS, {"name": "d", "expires_in": 31536001}, format="json"
    )
    negative = management_client.post(
        TOKENS, {"name": "d", "expires_in": -1}, format="json"
    )
    nameless = management_client.post(TOKENS, {"expires_in": 60}, format="json")

    assert (first.status_code, second.status_code) == (200, 200)
    assert duplicate.status_code == 409
    assert too_many.status_code == 422
    assert too_long_lived.status_code == 400
    assert negative.status_code == 400
    assert nameless.status_code == 400
    assert AccessToken.objects.filter(kind=TokenKind.PERSONAL).count() == 2


def test_an_expired_personal_access_token_is_refused(
    management_client: APIClient,
) -> None:
    token = management_client.post(
        TOKENS, {"name": "short", "expires_in": 60}, format="json"
    ).content.decode()
    AccessToken.objects.filter(kind=TokenKind.PERSONAL).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )

    assert _client(token).get(ME).status_code == 401


def test_logout_refuses_that_token_only(operator: Any) -> None:
    leaving = _client(issue_user_token(user=operator))
    staying = _client(issue_user_token(user=operator))

    response = leaving.post(LOGOUT)

    assert response.status_code == 202
    assert leaving.get(ME).status_code == 401
    assert leaving.post(LOGOUT).status_code == 401
    assert staying.get(ME).status_code == 200


def test_a_password_change_revokes_personal_access_tokens_too(operator: Any) -> None:
    session = _client(issue_user_token(user=operator))
    pat = _client(session.post(TOKENS, {"name": "ci"}, format="json").content.decode())

    changed = session.put(
        ME,
        {"password": "brand-new-pass", "current_password": "secret-pass-123"},
        format="json",
    )

    assert changed.status_code == 204
    assert pat.get(ME).status_code == 401
    assert session.get(ME).status_code == 200


def test_a_validly_signed_token_without_its_row_is_refused(operator: Any) -> None:
    # e.g. forged with a leaked signing key, or issued before revocation existed
    forged = issue_token(
        jti=str(uuid.uuid4()),
        subject=str(operator.pk),
        ttl=dt.timedelta(hours=1),
        claims={USER_CLAIM: True},
    )
    tampered_row_token = issue_user_token(user=operator)
    AccessToken.objects.update(token_hash="0" * 64)

    assert _client(forged).get(ME).status_code == 401
    assert _client(tampered_row_token).get(ME).status_code == 401


def test_token_authentication_costs_one_query(
    user_token: str, django_assert_num_queries: Any
) -> None:
    client = _client(user_token)
    assert client.get(ME).status_code == 200  # the first use records last_used_at
    # GET /users/me = the token lookup (with its user) + the user read of the view
    with django_assert_num_queries(2):
        assert client.get(ME).status_code == 200


def test_last_used_is_recorded_at_most_once_a_minute(
    management_client: APIClient,
) -> None:
    token = management_client.post(TOKENS, {"name": "ci"}, format="json").content
    pat = _client(token.decode())
    assert "last_used" not in management_client.get(TOKENS).json()[0]

    pat.get(ME)
    first = AccessToken.objects.personal().get().last_used_at
    assert first is not None
    pat.get(ME)
    unchanged = AccessToken.objects.personal().get().last_used_at
    AccessToken.objects.personal().update(last_used_at=first - dt.timedelta(minutes=2))
    pat.get(ME)
    refreshed = AccessToken.objects.personal().get().last_used_at
    assert refreshed is not None

    assert first is not None
    assert unchanged == first
    assert refreshed > first
    listed = management_client.get(TOKENS).json()[0]["last_used"]
    assert listed == refreshed.isoformat().replace("+00:00", "Z")


def test_purge_expired_tokens_deletes_only_expired_rows(operator: Any) -> None:
    issue_user_token(user=operator)
    issue_user_token(user=operator)
    oldest = AccessToken.objects.order_by("created_at").first()
    assert oldest is not None
    AccessToken.objects.filter(pk=oldest.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )

    assert purge_expired_tokens(now=timezone.now(), limit=10) == 1
    assert AccessToken.objects.count() == 1
