"""docker-compose.yml and the Dockerfile, checked by reading (no Docker engine in CI)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.queues import ALL_QUEUES, WORKER_GROUPS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKERS = tuple(f"worker-{group.name}" for group in WORKER_GROUPS)
REQUIRED = (
    "DJANGO_SECRET_KEY",
    "FLOTILLA_PUBLIC_URL",
    "POSTGRES_PASSWORD",
    "FLOTILLA_ADMIN_PASSWORD",
)


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (PROJECT_ROOT / "docker-compose.yml").read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


def test_secrets_and_the_public_url_have_no_defaults(compose_text: str) -> None:
    # Every use is ${VAR:?message}: compose refuses to start without them.
    for name in REQUIRED:
        uses = re.findall(r"\$\{" + name + r"(:?[-?+][^}]*)?\}", compose_text)
        assert uses, name
        assert all(use.startswith(":?") for use in uses), (name, uses)
    assert "flotilla-admin" not in compose_text
    assert "postgres:postgres@" not in compose_text


def test_app_services_share_the_environment_from_one_public_url(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("migrate", "web", *WORKERS, "beat"):
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production", name
        assert env["FLOTILLA_PUBLIC_URL"].startswith("${FLOTILLA_PUBLIC_URL:?"), name
        assert env["DATABASE_URL"].startswith(
            "postgres://flotilla:${POSTGRES_PASSWORD:?"
        )
    assert services["postgres"]["environment"]["POSTGRES_USER"] == "flotilla"


def test_web_worker_and_beat_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert services["web"]["healthcheck"]["test"] == [
        "CMD", "python", "-m", "config.probes", "web"
    ]  # fmt: skip
    for worker in WORKERS:
        ping = services[worker]["healthcheck"]["test"][1]
        assert "inspect ping" in ping
        assert ping.endswith("-d $$FLOTILLA_WORKER_QUEUE@$$HOSTNAME")
    beat_test = services["beat"]["healthcheck"]["test"]
    schedule = services["beat"]["command"][services["beat"]["command"].index("-s") + 1]
    assert beat_test[:5] == ["CMD", "python", "-m", "config.probes", "beat"]
    assert beat_test[5] == schedule
    for name in ("web", *WORKERS, "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_a_worker_per_group_consumes_every_queue_with_its_figures(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert "worker" not in services
    consumed: list[str] = []
    for group in WORKER_GROUPS:
        service = services[f"worker-{group.name}"]
        command = service["command"]
        queues = command[command.index("-Q") + 1].split(",")
        assert command[command.index("-n") + 1] == f"{group.name}@%h"
        assert queues == list(group.queues)
        assert command[command.index("--concurrency") + 1] == str(group.concurrency)
        assert command[command.index("--prefetch-multiplier") + 1] == str(
            group.prefetch_multiplier
        )
        assert service["environment"]["FLOTILLA_WORKER_QUEUE"] == group.name
        consumed += queues
    assert sorted(consumed) == sorted(ALL_QUEUES)


def test_dockerfile_installs_dependencies_before_copying_the_code() -> None:
    lines = [
        line.strip()
        for line in (PROJECT_ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    copy_all = lines.index("COPY . .")
    first_pip = next(i for i, line in enumerate(lines) if "pip install" in line)

    assert lines.index("COPY pyproject.toml ./") < first_pip < copy_all
    assert "--no-deps" in next(
        line for line in lines[copy_all:] if "pip install" in line
    )


def test_dockerfile_requirement_list_is_every_runtime_dependency() -> None:
    # The one-liner of the Dockerfile, run here against the real pyproject.toml.
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    script = re.search(r'python -c "(.*?)" >', dockerfile, re.S)
    assert script is not None
    code = script.group(1).replace("\\\n", "")  # sh: backslash-newline joins lines
    listed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")

    assert "Django>=5.2,<5.3" in listed
    assert "django-health-check[celery,redis]>=4.8,<5" in listed
    assert "django-storages[s3]>=1.14" in listed
