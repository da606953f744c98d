"""The compose health probes (config.probes) against a real beat process and a real server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from config.probes import is_beat_alive, is_web_ready, main
from tests.fixtures.celery_worker import (
    CeleryWorker,
    celery_process_env,
    start_celery_process,
    stop_process,
)
from tests.fixtures.live_server import LiveServer, start_live_server, stop_live_server


@pytest.mark.worker
@pytest.mark.django_db
def test_beat_probe_follows_a_real_beat_process(
    celery_worker: CeleryWorker, tmp_path: Path
) -> None:
    # given: no schedule file yet
    schedule = tmp_path / "celerybeat-schedule"
    assert is_beat_alive(schedule=str(schedule), max_age=600) is False

    # when: beat runs
    beat = start_celery_process(
        ["beat", "-l", "INFO", "-s", str(schedule)],
        celery_process_env(celery_worker.broker_url),
        tmp_path / "beat.log",
    )
    try:
        deadline = time.monotonic() + 60
        while not is_beat_alive(schedule=str(schedule), max_age=600):
            assert beat.poll() is None, (tmp_path / "beat.log").read_text()
            assert time.monotonic() < deadline, "beat wrote no schedule file in 60 s"
            time.sleep(0.2)
    finally:
        stop_process(beat)

    # then: healthy while fresh; a schedule last written 11 minutes ago is not
    assert main(["beat", str(schedule), "600"]) == 0
    stale = time.time() - 660
    for path in tmp_path.glob("celerybeat-schedule*"):
        os.utime(path, (stale, stale))
    assert main(["beat", str(schedule), "600"]) == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_web_probe_reads_readyz_of_the_real_server(
    celery_worker: CeleryWorker, flotilla_live_server: LiveServer, tmp_path: Path
) -> None:
    # given: a real server whose broker has a live worker, and the session server, whose
    # broker has none (so its /readyz answers 503)
    ready = start_live_server(tmp_path, CELERY_BROKER_URL=celery_worker.broker_url)
    try:
        # when / then
        assert is_web_ready(bind=f"0.0.0.0:{_port(ready)}") is True
        assert is_web_ready(bind=f"0.0.0.0:{_port(flotilla_live_server)}") is False
    finally:
        stop_live_server(ready)
    assert is_web_ready(bind=f"0.0.0.0:{_port(ready)}") is False


def _port(server: LiveServer) -> str:
    return server.url.rsplit(":", 1)[-1]


def test_probe_usage_error_exits_2() -> None:
    assert main(["nonsense"]) == 2
