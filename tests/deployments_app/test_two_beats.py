"""Two real beat processes and two real workers through a phased rollout: no decision made twice.

Every write of a phase's ``started_at``, of a deployment's ``status``/``finished`` and every
device-deployment insert is recorded by PostgreSQL triggers installed for this test, so a
second opening or a second finalisation shows as an extra row. The test settings use a per-process (locmem) cache, so the cache locks of the
periodic tasks do not coordinate the two workers here: what keeps decisions single is the
database (conditional updates and row locks), which is the claim docs/scaling.md makes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from config.queues import ALL_QUEUES
from deployments_app.models import Deployment, DeploymentPhase, DeviceDeployment
from deployments_app.services.creation import PhaseRequest, create_deployment
from deployments_app.services.phases import advance_phased_rollouts
from tests import factories
from tests.deployments_app.engine_helpers import install, poll
from tests.fixtures.celery_worker import (
    CeleryWorker,
    celery_process_env,
    start_celery_process,
    stop_process,
    worker_arguments,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

AUDIT_TABLE = "test_two_beats_audit"
PERIODIC_ENTRIES = (
    "advance-phased-rollouts",
    "sweep-deployments",
    "purge-expired-device-tokens",
    "reevaluate-device-filters",
)
# Every periodic task every second, from each beat.
BEAT_INTERVALS = {
    "FLOTILLA_PHASE_INTERVAL": "1",
    "FLOTILLA_SWEEP_INTERVAL": "1",
    "FLOTILLA_TOKEN_PURGE_INTERVAL": "1",
    "FLOTILLA_FILTER_REPAIR_INTERVAL": "1",
}


def _audit_sql() -> tuple[list[str], list[str]]:
    phases = DeploymentPhase._meta.db_table
    deployments = Deployment._meta.db_table
    records = DeviceDeployment._meta.db_table
    triggers = [
        (
            phases,
            "phase_started",
            "NEW.id::text, OLD.started_at::text, NEW.started_at::text",
            "OLD.started_at IS DISTINCT FROM NEW.started_at",
            "UPDATE",
        ),
        (
            deployments,
            "deployment_status",
            "NEW.id::text, OLD.status, NEW.status",
            "OLD.status IS DISTINCT FROM NEW.status"
            " OR OLD.finished IS DISTINCT FROM NEW.finished",
            "UPDATE",
        ),
        (
            records,
            "device_deployment_created",
            "NEW.deployment_id::text, NULL, NEW.device_id::text",
            "true",
            "INSERT",
        ),
    ]
    create = [
        f"CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (id bigserial PRIMARY KEY, kind text,"
        " row_id text, old_value text, new_value text)"
    ]
    drop = []
    for table, kind, values, condition, event in triggers:
        function = f"{AUDIT_TABLE}_{kind}"
        create += [
            f"DROP TRIGGER IF EXISTS {function} ON {table}",
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN INSERT INTO {AUDIT_TABLE} (kind, row_id, old_value, new_value)"
            f" VALUES ('{kind}', {values}); RETURN NEW; END $$",
            f"CREATE TRIGGER {function} AFTER {event} ON {table} FOR EACH ROW"
            f" WHEN ({condition}) EXECUTE FUNCTION {function}()",
        ]
        drop += [
            f"DROP TRIGGER IF EXISTS {function} ON {table}",
            f"DROP FUNCTION IF EXISTS {function}()",
        ]
    drop.append(f"DROP TABLE IF EXISTS {AUDIT_TABLE}")
    return create, drop


@pytest.fixture
def write_audit(transactional_db: None) -> Iterator[None]:
    """Record the writes the test counts (see the module docstring); removed afterwards."""
    create, drop = _audit_sql()
    with connection.cursor() as cursor:
        for statement in create:
            cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for statement in drop:
                cursor.execute(statement)


def audit_rows(kind: str) -> list[tuple[str, str | None, str | None]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT row_id, old_value, new_value FROM {AUDIT_TABLE}"
            " WHERE kind = %s ORDER BY id",
            [kind],
        )
        return list(cursor.fetchall())


@pytest.fixture
def second_worker(
    celery_worker: CeleryWorker, tmp_path: Path
) -> Iterator[CeleryWorker]:
    """Another real worker on the same broker and database as the session's worker."""
    log_path = tmp_path / "second-worker.log"
    process = start_celery_process(
        worker_arguments(f"flotilla-test-second-{uuid.uuid4().hex[:8]}"),
        celery_process_env(celery_worker.broker_url),
        log_path,
    )
    worker = CeleryWorker(
        broker_url=celery_worker.broker_url, log_path=log_path, process=process
    )
    try:
        worker.wait_for(
            lambda: " ready." in worker.log_text(),
            timeout=60,
            description="the second worker to be ready",
        )
        yield worker
    finally:
        stop_process(process)


@pytest.fixture
def two_beats(
    celery_worker: CeleryWorker, second_worker: CeleryWorker, tmp_path: Path
) -> Iterator[list[Path]]:
    """Two real beat processes, each with its own schedule file, publishing the same schedule."""
    env = celery_process_env(celery_worker.broker_url, **BEAT_INTERVALS)
    logs = [tmp_path / f"beat-{n}.log" for n in (1, 2)]
    processes = [
        start_celery_process(
            ["beat", "-l", "INFO", "-s", str(tmp_path / f"beat-{n}-schedule")],
            env,
            log,
        )
        for n, log in zip((1, 2), logs, strict=True)
    ]
    try:
        yield logs
    finally:
        for process in processes:
            stop_process(process)
        # What the beats sent and no worker took yet must not run during later tests.
        _drain_queues(celery_worker.broker_url)
        _wait_until_quiet(celery_worker)


def _drain_queues(broker_url: str) -> None:
    import redis

    client = redis.Redis.from_url(broker_url)
    try:
        for queue in ALL_QUEUES:
            # kombu keeps one list per priority step: "name", then "name\x06\x16<step>".
            client.delete(queue, *(f"{queue}\x06\x16{step}" for step in range(1, 10)))
    finally:
        client.close()


def _wait_until_quiet(worker: CeleryWorker, quiet: float = 1.0) -> None:
    """Wait (bounded) until the worker's log has not grown for ``quiet`` seconds."""
    size, since = len(worker.log_text()), time.monotonic()

    def is_quiet() -> bool:
        nonlocal size, since
        current = len(worker.log_text())
        if current != size:
            size, since = current, time.monotonic()
        return time.monotonic() - since >= quiet

    worker.wait_for(is_quiet, timeout=30, description="the worker to go quiet")


def _sent(beat_log: Path, entry: str) -> int:
    text = beat_log.read_text(errors="replace") if beat_log.exists() else ""
    return text.count(f"Sending due task {entry} ")


def _succeeded(worker: CeleryWorker, task: str) -> int:
    return sum(
        1
        for line in worker.log_text().splitlines()
        if f"Task {task}[" in line and "succeeded" in line
    )


def test_two_beats_and_two_workers_open_each_phase_and_finish_once(
    write_audit: None,
    celery_worker: CeleryWorker,
    second_worker: CeleryWorker,
    two_beats: list[Path],
) -> None:
    # given a phased rollout of 4 devices: 2, then 1, then 1, phases 3 s apart
    client = APIClient()
    devices = factories.bulk_accepted_devices(4, prefix="twobeats")
    tokens = {str(device.id): token for device, token in devices}
    factories.artifact("v2", ["probe-device"])
    now = timezone.now()
    deployment = create_deployment(
        name="two-beats",
        artifact_name="v2",
        devices=list(tokens),
        phases=[
            PhaseRequest(batch_size=50, start_ts=now + dt.timedelta(seconds=3)),
            PhaseRequest(batch_size=25, start_ts=now + dt.timedelta(seconds=6)),
            PhaseRequest(batch_size=None, start_ts=now + dt.timedelta(seconds=9)),
        ],
    )
    assert deployment.status == "scheduled"
    phases = list(
        DeploymentPhase.objects.filter(deployment=deployment).order_by("number")
    )

    # when the beats open each phase, the devices of the open phases install
    installed: set[str] = set()
    for number, phase in enumerate(phases, start=1):

        def opened(phase: DeploymentPhase = phase) -> bool:
            return DeploymentPhase.objects.filter(
                pk=phase.pk, started_at__isnull=False
            ).exists()

        celery_worker.wait_for(
            opened,
            timeout=60,
            description=f"phase {number} to be opened by beat",
        )
        for device_id, token in tokens.items():
            if (
                device_id not in installed
                and poll(client, token, "v1").status_code == 200
            ):
                install(client, token, str(deployment.pk))
                installed.add(device_id)
        # admission follows the clock, not beat: bounded by the batches started by now
        polled_at = timezone.now()
        assert len(installed) <= sum(
            # every phase of a static deployment has a capacity
            cast(int, p.capacity)
            for p in phases
            if p.start_ts <= polled_at
        )
    assert installed == set(tokens)
    celery_worker.wait_for(
        lambda: Deployment.objects.filter(pk=deployment.pk, status="finished").exists(),
        timeout=60,
        description="the deployment to be finished",
    )

    # and both beats keep scheduling every periodic task onto both workers for a while longer
    sent_at_finish = {log: _sent(log, "sweep-deployments") for log in two_beats}
    celery_worker.wait_for(
        lambda: (
            all(
                _sent(log, "sweep-deployments") >= sent + 3
                for log, sent in sent_at_finish.items()
            )
            and all(
                _succeeded(worker, "deployments_app.tasks.advance_phased_rollouts_task")
                and _succeeded(worker, "deployments_app.tasks.sweep_deployments_task")
                for worker in (celery_worker, second_worker)
            )
        ),
        timeout=60,
        description="three more sweeps from each beat, and periodic work on both workers",
    )

    # then each phase opened exactly once, the deployment moved through each status once,
    # and each device deployment was created once
    assert [row[:2] for row in audit_rows("phase_started")] == [
        (str(phase.pk), None) for phase in phases
    ]
    assert audit_rows("deployment_status") == [
        (str(deployment.pk), "scheduled", "pending"),
        (str(deployment.pk), "pending", "inprogress"),
        (str(deployment.pk), "inprogress", "finished"),
    ]
    assert sorted(audit_rows("device_deployment_created")) == sorted(
        (str(deployment.pk), None, device_id) for device_id in tokens
    )
    for log in two_beats:
        assert all(_sent(log, entry) >= 1 for entry in PERIODIC_ENTRIES), log.name
    for worker in (celery_worker, second_worker):
        assert " raised unexpected" not in worker.log_text()


def test_an_advance_waiting_on_a_concurrent_one_neither_reopens_nor_restarts(
    transactional_db: None,
) -> None:
    # given a scheduled deployment whose first phase is due
    devices = factories.bulk_accepted_devices(2, prefix="advance-race")
    factories.artifact("v2", ["probe-device"])
    later = timezone.now() + dt.timedelta(hours=1)
    deployment = create_deployment(
        name="advance-race",
        artifact_name="v2",
        devices=[str(device.id) for device, _ in devices],
        phases=[
            PhaseRequest(batch_size=50, start_ts=later),
            PhaseRequest(batch_size=None, start_ts=later + dt.timedelta(hours=1)),
        ],
    )
    DeploymentPhase.objects.filter(deployment=deployment, number=1).update(
        start_ts=timezone.now() - dt.timedelta(seconds=1)
    )
    results: dict[str, dict[str, int]] = {}
    first_has_written = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = advance_phased_rollouts(now=timezone.now(), limit=10)
                first_has_written.set()
                release_first.wait(timeout=30)
        finally:
            connection.close()

    def second() -> None:
        try:
            results["second"] = advance_phased_rollouts(now=timezone.now(), limit=10)
        finally:
            connection.close()

    # when a second advance reads the same due phase while the first has not committed,
    # and must wait for the first's row locks to write
    first_thread = threading.Thread(target=first)
    first_thread.start()
    assert first_has_written.wait(timeout=30)
    second_thread = threading.Thread(target=second)
    second_thread.start()
    deadline = time.monotonic() + 30
    while not _a_backend_waits_on_a_lock():
        assert time.monotonic() < deadline, "the second advance never waited"
        time.sleep(0.05)
    release_first.set()
    first_thread.join(timeout=30)
    second_thread.join(timeout=30)

    # then only the first opened the phase and started the deployment
    assert results == {
        "first": {"phases_opened": 1, "deployments_started": 1},
        "second": {"phases_opened": 0, "deployments_started": 0},
    }
    assert Deployment.objects.get(pk=deployment.pk).status == "pending"
    assert (
        DeploymentPhase.objects.filter(
            deployment=deployment, started_at__isnull=False
        ).count()
        == 1
    )


def _a_backend_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0
