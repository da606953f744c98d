"""A server started the way `make run` starts it: own secret key, DEBUG off.

The server is real (gunicorn) with the settings and environment `make run` gives its children
(``cli.run_environ``), on a free loopback port and the test database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import override_settings

from config.accounts.services.tokens import issue_user_token
from devtools.stack import cli
from devtools.stack.provision import Plan, Stack
from tests.fixtures.live_server import LiveServer, running_server

pytestmark = pytest.mark.django_db(transaction=True)

PUBLIC_KEY = "insecure-dev-key-change-me"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``.flotilla`` folder of a fresh checkout."""
    return tmp_path_factory.mktemp("checkout") / ".flotilla"


@pytest.fixture(scope="module")
def run_server(
    django_db_setup: None,
    django_db_blocker: Any,
    checkout: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    # A developer's shell sets none of these; `make run` decides them.
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DJANGO_DEBUG"}
    }
    stack = Stack(
        plan=Plan(database="env", redis="env"),
        database_url=os.environ.get("DATABASE_URL", ""),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"),
    )
    env = cli.run_environ(stack, environ, data_dir=checkout)
    # What `make run` decides, less where to listen and which database: the test's own.
    decided = {
        key: value
        for key, value in env.items()
        if os.environ.get(key) != value
        and key not in {"DATABASE_URL", "FLOTILLA_BIND", "FLOTILLA_PUBLIC_URL"}
    }
    with running_server(tmp_path_factory.mktemp("run-server"), **decided) as server:
        yield server


@pytest.fixture
def admin() -> Any:
    return get_user_model().objects.create_superuser(
        username="admin@example.com", email="admin@example.com", password="pw-12345678"
    )


def _get(server: LiveServer, path: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{server.url}{path}", headers=headers, timeout=30)


def test_an_admin_token_forged_with_the_old_public_key_is_refused(
    run_server: LiveServer, checkout: Path, admin: Any
) -> None:
    # given a token signed with the key Flotilla used to publish, and one with the checkout's
    with override_settings(SECRET_KEY=PUBLIC_KEY):
        forged = issue_user_token(user=admin)
    own_key = (checkout / "secret_key").read_text().strip()
    with override_settings(SECRET_KEY=own_key):
        genuine = issue_user_token(user=admin)

    # when / then
    assert _get(run_server, DEPLOYMENTS, forged).status_code == 401
    assert _get(run_server, DEPLOYMENTS, genuine).status_code == 200


def test_debug_is_off_so_error_pages_show_no_internals(
    run_server: LiveServer, checkout: Path, admin: Any
) -> None:
    # given
    with override_settings(SECRET_KEY=(checkout / "secret_key").read_text().strip()):
        token = issue_user_token(user=admin)

    # when
    not_found = _get(run_server, "/no-such-page")
    nul_search = _get(run_server, f"{DEPLOYMENTS}?search=%00", token)

    # then: DEBUG's 404 page lists the URL patterns, its 500 page the traceback and settings
    assert not_found.status_code == 404
    assert "URLconf" not in not_found.text
    assert nul_search.status_code in {400, 500}
    assert "Traceback" not in nul_search.text
    assert "DJANGO_SETTINGS_MODULE" not in nul_search.text
