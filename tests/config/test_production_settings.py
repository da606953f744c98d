"""Production settings: `check --deploy` is clean behind the documented HTTPS proxy, and the
admin login works through that proxy (CSRF trusted origin, secure cookies, proxy header)."""

from __future__ import annotations

import importlib
import os
import secrets
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.test import Client

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
PUBLIC_URL = "https://updates.example.com"


def _production_environ(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "FLOTILLA_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        FLOTILLA_PUBLIC_URL=PUBLIC_URL,
    )
    env.update(overrides)
    return env


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_the_documented_proxy_settings() -> None:
    result = _check_deploy(_production_environ())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_warns_when_the_public_url_is_plain_http() -> None:
    # Without TLS, secure cookies and HSTS would break the admin: they are off, and said so.
    result = _check_deploy(
        _production_environ(FLOTILLA_PUBLIC_URL="http://10.0.0.5:8080")
    )

    assert result.returncode == 1
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_production_settings_refuse_a_public_url_that_is_not_absolute() -> None:
    result = _check_deploy(
        _production_environ(FLOTILLA_PUBLIC_URL="updates.example.com")
    )

    assert result.returncode == 1
    assert "FLOTILLA_PUBLIC_URL must be an absolute http(s) URL" in result.stderr


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The production settings module, loaded under the documented environment."""
    for key, value in _production_environ(DJANGO_ALLOWED_HOSTS="flotilla.lan").items():
        monkeypatch.setenv(key, value)
    module = importlib.import_module("config.settings.production")
    return importlib.reload(module)


def test_allowed_hosts_and_csrf_origin_come_from_the_public_url(
    production: ModuleType,
) -> None:
    assert production.ALLOWED_HOSTS == [
        "updates.example.com",
        "flotilla.lan",
        "localhost",
        "127.0.0.1",
    ]
    assert production.CSRF_TRUSTED_ORIGINS == [PUBLIC_URL]
    assert production.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert production.SESSION_COOKIE_SECURE is True
    assert production.CSRF_COOKIE_SECURE is True
    assert production.SECURE_HSTS_SECONDS == 365 * 24 * 3600


SECURITY_SETTINGS = (
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)


@pytest.mark.django_db
def test_admin_login_works_behind_the_https_proxy(
    production: ModuleType, settings: Any, django_user_model: Any
) -> None:
    # given: the production security settings and a staff user
    for name in SECURITY_SETTINGS:
        setattr(settings, name, getattr(production, name))
    django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password="admin-pass-123"
    )
    browser = Client(enforce_csrf_checks=True, HTTP_HOST="updates.example.com")
    proxied: dict[str, Any] = {"HTTP_X_FORWARDED_PROTO": "https", "secure": False}

    # when: the login form is fetched and posted through the proxy (Origin of the public URL)
    form = browser.get("/admin/login/", **proxied)
    login = browser.post(
        "/admin/login/?next=/admin/",
        {
            "username": "root",
            "password": "admin-pass-123",
            "csrfmiddlewaretoken": form.cookies["csrftoken"].value,
            "next": "/admin/",
        },
        HTTP_ORIGIN=PUBLIC_URL,
        HTTP_REFERER=f"{PUBLIC_URL}/admin/login/",
        **proxied,
    )

    # then: logged in, with secure cookies and HSTS
    assert form.status_code == 200
    assert form.cookies["csrftoken"]["secure"] is True
    assert form.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert login.status_code == 302, login.content[:500]
    assert login.headers["Location"] == "/admin/"
    assert login.cookies["sessionid"]["secure"] is True
    assert browser.get("/admin/", **proxied).status_code == 200


@pytest.mark.django_db
def test_plain_http_through_the_proxy_is_redirected_but_probes_are_not(
    production: ModuleType, settings: Any
) -> None:
    for name in SECURITY_SETTINGS:
        setattr(settings, name, getattr(production, name))
    client = Client(HTTP_HOST="updates.example.com")

    redirected = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="http")
    probe = client.get("/healthz")

    assert redirected.status_code == 301
    assert redirected.headers["Location"] == f"{PUBLIC_URL}/admin/login/"
    assert probe.status_code == 200
