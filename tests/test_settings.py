"""Settings refuse unsafe secrets and keep DEBUG off unless asked (a fresh process each)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PUBLIC_KEY = "insecure-dev-key-change-me"
A_GOOD_KEY = "a-long-random-value-0f7c1e9a4b2d8c6e5f3a1b7d9e0c2a4f"


def _load(module: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Load ``module`` with exactly the given DJANGO_* variables; prints DEBUG."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SETTINGS_MODULE=module, DJANGO_ALLOWED_HOSTS="localhost", **variables
    )
    code = "import django; from django.conf import settings; django.setup(); print(settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "module", ["config.settings.local", "config.settings.production"]
)
@pytest.mark.parametrize("key", [PUBLIC_KEY, "", "  "])
def test_an_empty_or_public_secret_key_is_refused(module: str, key: str) -> None:
    result = _load(module, DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert (
        "ImproperlyConfigured: DJANGO_SECRET_KEY is empty or a publicly known value"
        in result.stderr
    )


def test_local_settings_without_a_secret_key_are_refused() -> None:
    result = _load("config.settings.local")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is empty" in result.stderr


@pytest.mark.parametrize(
    ("debug", "expected"), [(None, "False"), ("0", "False"), ("1", "True")]
)
def test_local_settings_run_without_debug_unless_asked(
    debug: str | None, expected: str
) -> None:
    variables = {"DJANGO_SECRET_KEY": A_GOOD_KEY}
    if debug is not None:
        variables["DJANGO_DEBUG"] = debug
    result = _load("config.settings.local", **variables)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_test_settings_keep_a_fixed_key_that_is_not_the_public_one() -> None:
    assert settings.SECRET_KEY == "flotilla-test-suite-key-not-a-secret"
    assert settings.SECRET_KEY not in settings.PUBLIC_SECRET_KEYS
