"""The commands behind `make run` / `make test` / `make manage` (devtools.stack.cli)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.stack import ROOT, cli
from devtools.stack.provision import Plan, Stack


def test_banner_tells_where_and_how_to_log_in() -> None:
    provisioned = Stack(plan=Plan(database="local", redis="local"))
    text = cli.banner(
        provisioned,
        {
            "FLOTILLA_BIND": "0.0.0.0:8081",
            "FLOTILLA_ADMIN_EMAIL": "ops@example.com",
            "FLOTILLA_ADMIN_PASSWORD": "s3cret pass",
        },
    )
    assert "http://127.0.0.1:8081/admin/" in text
    assert "ops@example.com / s3cret pass" in text
    assert (
        "curl -X POST -u 'ops@example.com:s3cret pass' "
        "http://127.0.0.1:8081/api/management/v1/useradm/auth/login"
    ) in text
    assert "Only this machine can connect" not in text


@pytest.mark.parametrize("bind", ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"])
def test_banner_says_how_to_reach_a_loopback_server_from_devices(bind: str) -> None:
    provisioned = Stack(plan=Plan(database="local", redis="local"))
    text = cli.banner(provisioned, {"FLOTILLA_BIND": bind})
    assert (
        "Only this machine can connect; for devices on other machines set "
        "FLOTILLA_BIND=0.0.0.0:8080."
    ) in text


def test_the_stack_does_not_import_the_config_package() -> None:
    # given an environment without a settings module
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import os, sys\n"
        "from devtools.stack import cli, embedded, network, provision, supervise\n"
        "print('config' in sys.modules, os.environ.get('DJANGO_SETTINGS_MODULE'))\n"
    )
    # when the stack's modules are imported
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # then config's import side effects (a settings module for every child) did not happen
    assert result.stdout.strip() == "False None"


def test_test_command_leaves_the_settings_module_to_pytest() -> None:
    provisioned = Stack(
        plan=Plan(database="local", redis="local"),
        database_url="postgres://postgres@127.0.0.1:5432/flotilla",
        redis_url="redis://127.0.0.1:6379/1",
    )
    assert provisioned.environ({"KEEP": "1"}) == {
        "KEEP": "1",
        "DATABASE_URL": provisioned.database_url,
        "REDIS_URL": provisioned.redis_url,
        "PYTHONUNBUFFERED": "1",
    }


def test_run_and_manage_use_the_local_settings_on_127_0_0_1_8080(
    tmp_path: Path,
) -> None:
    provisioned = Stack(plan=Plan(database="local", redis="local"))
    env = cli.run_environ(provisioned, {}, data_dir=tmp_path)
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.local"
    assert env["FLOTILLA_BIND"] == "127.0.0.1:8080"
    chosen = cli.run_environ(
        provisioned, {"FLOTILLA_BIND": "0.0.0.0:8080"}, data_dir=tmp_path
    )
    assert chosen["FLOTILLA_BIND"] == "0.0.0.0:8080"


def test_run_gives_the_checkout_secret_key_unless_one_is_set(tmp_path: Path) -> None:
    provisioned = Stack(plan=Plan(database="local", redis="local"))
    env = cli.run_environ(provisioned, {}, data_dir=tmp_path)
    assert env["DJANGO_SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
    assert "DJANGO_DEBUG" not in env
    given = cli.run_environ(
        provisioned, {"DJANGO_SECRET_KEY": "chosen"}, data_dir=tmp_path / "other"
    )
    assert given["DJANGO_SECRET_KEY"] == "chosen"
    assert not (tmp_path / "other").exists()
