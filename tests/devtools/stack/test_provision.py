"""Where `make run` / `make test` take PostgreSQL and Redis from (devtools.stack.provision)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from devtools.stack import ROOT, provision
from devtools.stack.supervise import free_port  # bound, then closed again


def _probe_must_not_run() -> bool:
    raise AssertionError("probe ran although the environment decided")


# --------------------------------------------------------------------------- make_plan


def test_environment_urls_win_without_probing() -> None:
    plan = provision.make_plan(
        {"DATABASE_URL": "postgres://db/x", "REDIS_URL": "redis://r:6379/0"},
        postgres_reachable=_probe_must_not_run,
        redis_reachable=_probe_must_not_run,
    )
    assert plan == provision.Plan(database="env", redis="env")


def test_local_services_when_they_answer() -> None:
    plan = provision.make_plan(
        {}, postgres_reachable=lambda: True, redis_reachable=lambda: True
    )
    assert plan == provision.Plan(database="local", redis="local")


def test_embedded_when_nothing_answers() -> None:
    plan = provision.make_plan(
        {}, postgres_reachable=lambda: False, redis_reachable=lambda: False
    )
    assert plan == provision.Plan(database="embedded", redis="embedded")


def test_each_service_is_decided_on_its_own() -> None:
    plan = provision.make_plan(
        {"DATABASE_URL": "postgres://db/x"},
        postgres_reachable=_probe_must_not_run,
        redis_reachable=lambda: False,
    )
    assert plan == provision.Plan(database="env", redis="embedded")


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_flotilla_embedded_forces_embedded_servers(value: str) -> None:
    plan = provision.make_plan(
        {
            "FLOTILLA_EMBEDDED": value,
            "DATABASE_URL": "postgres://db/x",
            "REDIS_URL": "redis://r:6379/0",
        },
        postgres_reachable=_probe_must_not_run,
        redis_reachable=_probe_must_not_run,
    )
    assert plan == provision.Plan(database="embedded", redis="embedded")


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_flotilla_embedded_off_values_keep_the_order(value: str) -> None:
    plan = provision.make_plan(
        {"FLOTILLA_EMBEDDED": value},
        postgres_reachable=lambda: True,
        redis_reachable=lambda: False,
    )
    assert plan == provision.Plan(database="local", redis="embedded")


# --------------------------------------------------------------------------- provision


def test_provision_local_for_tests_uses_flotilla_and_redis_db_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[str] = []
    monkeypatch.setattr(provision, "ensure_database", lambda url: created.append(url))
    provisioned = provision.provision(
        "test", {}, plan=provision.Plan(database="local", redis="local")
    )
    assert provisioned.database_url == "postgres://postgres@127.0.0.1:5432/flotilla"
    assert provisioned.redis_url == "redis://127.0.0.1:6379/1"
    assert created == [provisioned.database_url]


def test_provision_run_uses_redis_db_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provision, "ensure_database", lambda url: False)
    provisioned = provision.provision(
        "run", {}, plan=provision.Plan(database="local", redis="local")
    )
    assert provisioned.redis_url == "redis://127.0.0.1:6379/0"


def test_provision_passes_environment_urls_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provision, "ensure_database", lambda url: False)
    given = {
        "DATABASE_URL": "postgres://u:p@db.example:5433/other",
        "REDIS_URL": "redis://cache.example:6380/4",
    }
    provisioned = provision.provision(
        "test", given, plan=provision.Plan(database="env", redis="env")
    )
    env = provisioned.environ({"DATABASE_URL": "stale", "KEEP": "1"})
    assert env["DATABASE_URL"] == given["DATABASE_URL"]
    assert env["REDIS_URL"] == given["REDIS_URL"]
    assert env["KEEP"] == "1"


def test_database_url_that_cannot_be_checked_is_still_used() -> None:
    url = f"postgres://postgres@127.0.0.1:{free_port()}/flotilla"
    provisioned = provision.provision(
        "run",
        {"DATABASE_URL": url, "REDIS_URL": "redis://r/0"},
        plan=provision.Plan(database="env", redis="env"),
    )
    assert provisioned.database_url == url


# --------------------------------------------------------------------------- secret key


def test_checkout_secret_key_is_made_once_and_kept(tmp_path: Path) -> None:
    # given a checkout without a key
    data_dir = tmp_path / ".flotilla"

    # when
    first = provision.checkout_secret_key(data_dir)
    second = provision.checkout_secret_key(data_dir)

    # then
    assert first == second
    assert len(first) >= 50
    key_file = data_dir / "secret_key"
    assert key_file.read_text() == first + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == ["secret_key"]


def test_each_checkout_gets_its_own_secret_key(tmp_path: Path) -> None:
    assert provision.checkout_secret_key(
        tmp_path / "a"
    ) != provision.checkout_secret_key(tmp_path / "b")


def test_the_secret_key_file_is_ignored_by_git() -> None:
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", ".flotilla/secret_key"],
        cwd=ROOT,
    )
    assert result.returncode == 0
