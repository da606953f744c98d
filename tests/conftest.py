from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

pytest_plugins = ["tests.fixtures.live_server", "tests.fixtures.celery_worker"]


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(
        username="ops@example.com", email="ops@example.com", password="secret-pass-123"
    )


@pytest.fixture
def user_token(operator: Any) -> str:
    from config.accounts.services.tokens import issue_user_token

    return issue_user_token(user=operator)


@pytest.fixture
def management_client(user_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token}")
    return client


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()
