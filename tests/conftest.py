from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
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


@pytest.fixture
def live_management_api(
    transactional_db: None, live_server_url: str, user_token: str
) -> Iterator[Any]:
    """The live server's management API (``tests.e2e.conftest.ManagementAPI``) as ``operator``."""
    from tests.e2e.conftest import ManagementAPI

    with requests.Session() as session:
        yield ManagementAPI(base_url=live_server_url, token=user_token, session=session)
