"""Expansion on real Celery worker processes: a worker SIGKILLed mid-way, the task redelivered."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deployments_app.models import Deployment, DeviceDeployment
from deployments_app.services.creation import create_deployment
from tests import factories
from tests.fixtures.celery_worker import (
    CeleryWorker,
    celery_process_env,
    start_celery_process,
    stop_process,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUEUE = "expansion-crash-test"
TARGETS = 12_000
BATCH = 100


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def spawn_worker(
    celery_worker: CeleryWorker, tmp_path: Path
) -> Iterator[Callable[[str], subprocess.Popen]]:
    """Start extra real workers that consume only QUEUE, with a short visibility timeout."""
    processes: list[subprocess.Popen] = []

    def spawn(name: str) -> subprocess.Popen:
        env = celery_process_env(
            celery_worker.broker_url,
            FLOTILLA_EXPANSION_BATCH_SIZE=str(BATCH),
            # Redelivery of the killed worker's unacknowledged task after 2 s, looked for every second.
            CELERY_VISIBILITY_TIMEOUT="2",
            CELERY_UNACKED_RESTORE_INTERVAL="1",
            CELERY_UNACKED_RESTORE_THROTTLE="1",
        )
        arguments = [
            "worker",
            "--pool",
            "solo",
            "-Q",
            QUEUE,
            "-n",
            f"{name}-{os.getpid()}@%h",
        ]
        arguments += [
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
        ]
        process = start_celery_process(arguments, env, tmp_path / f"{name}.log")
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        stop_process(process)


def test_worker_killed_mid_expansion_then_redelivery_gives_exactly_one_row_per_target(
    celery_worker: CeleryWorker, spawn_worker: Callable[[str], subprocess.Popen]
) -> None:
    from config.celery import app

    # given: a large static group and a worker that expands in small batches
    factories.bulk_group("fleet", TARGETS)
    factories.artifact("release-1", ["probe-device"])
    # conf.update (not assignment) makes Celery rebuild its cached router.
    saved_routes = app.conf.task_routes
    app.conf.update(
        task_routes={"deployments_app.tasks.expand_deployment_task": {"queue": QUEUE}}
    )
    try:
        first = spawn_worker("doomed")

        # when: the deployment is created and the worker is killed while expanding
        deployment = create_deployment(
            name="big", artifact_name="release-1", group="fleet"
        )
        rows = DeviceDeployment.objects.filter(deployment=deployment)
        wait_until(
            lambda: rows.count() >= 20 * BATCH, timeout=60, what="expansion to start"
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        partial = rows.count()
        assert partial < TARGETS, (
            "the worker finished before it could be killed; raise TARGETS"
        )
        assert Deployment.objects.get(pk=deployment.pk).expanded_at is None

        # then: another worker gets the redelivered task and completes it exactly
        spawn_worker("survivor")
        wait_until(
            lambda: Deployment.objects.filter(
                pk=deployment.pk, expanded_at__isnull=False
            ).exists(),
            timeout=90,
            what="the redelivered expansion to finish",
        )
    finally:
        app.conf.update(task_routes=saved_routes)

    assert rows.count() == TARGETS
    assert rows.values("device_id").distinct().count() == TARGETS
    assert Deployment.objects.get(pk=deployment.pk).device_count == TARGETS
    assert set(rows.values_list("status", flat=True)) == {"pending"}
