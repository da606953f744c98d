"""Killed uploads leave nothing behind once the upload sweep has run (issue: crash-safe uploads).

The real web process (gunicorn) is SIGKILLed mid-upload (a spool file remains) and just after
the move into storage (a stored file without a row remains); the sweep then removes both and
leaves every artifact row and its file intact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from django.db import connection

from deployments_app.models import Artifact
from deployments_app.services.upload_sweep import (
    remove_abandoned_spool_files,
    remove_orphaned_artifact_files,
)
from deployments_app.tasks import sweep_upload_leftovers_task
from tests.deployments_app.conftest import BuiltArtifacts
from tests.e2e.mender_harness import wait_for
from tests.fixtures.live_server import (
    LiveServer,
    database_url,
    start_live_server,
    stop_live_server,
)

ARTIFACTS_URL = "/api/management/v1/deployments/artifacts"


def kill_server(server: LiveServer) -> None:
    """SIGKILL gunicorn's master and worker at once (what an OOM kill or power cut does)."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)


def files_under(directory: Path) -> list[Path]:
    return (
        sorted(p for p in directory.rglob("*") if p.is_file())
        if directory.exists()
        else []
    )


@pytest.fixture
def upload_dirs(settings: Any, tmp_path: Path) -> tuple[Path, Path]:
    """A media root (artifact storage) and its spool directory, shared with the servers."""
    media = tmp_path / "media"
    spool = media / "upload-spool"
    media.mkdir()
    settings.MEDIA_ROOT = str(media)
    settings.FLOTILLA_UPLOAD_SPOOL_DIR = str(spool)
    return media, spool


@pytest.fixture
def start_server(
    upload_dirs: tuple[Path, Path], tmp_path: Path
) -> Iterator[Callable[[], LiveServer]]:
    media, spool = upload_dirs
    started: list[LiveServer] = []

    def start() -> LiveServer:
        log_dir = tmp_path / f"server-{len(started)}"
        log_dir.mkdir()
        server = start_live_server(
            log_dir,
            FLOTILLA_MEDIA_ROOT=str(media),
            FLOTILLA_UPLOAD_SPOOL_DIR=str(spool),
        )
        started.append(server)
        return server

    yield start
    for server in started:
        stop_live_server(server)


def _multipart_head(boundary: str, filename: str) -> bytes:
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="artifact"; filename="{filename}"\r\n'
        "Content-Type: application/vnd.mender-artifact\r\n\r\n"
    ).encode()


def start_unfinished_upload(
    server: LiveServer, token: str, *, sent: int, declared: int
) -> socket.socket:
    """Send the headers and the first ``sent`` bytes of a ``declared``-byte artifact, then stall."""
    boundary = "flotilla-crash-test"
    head = _multipart_head(boundary, "big.mender")
    tail = f"\r\n--{boundary}--\r\n".encode()
    host, port = server.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.sendall(
        (
            f"POST {ARTIFACTS_URL} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + declared + len(tail)}\r\n\r\n"
        ).encode()
        + head
    )
    chunk = os.urandom(1024 * 1024)
    for _ in range(sent // len(chunk)):
        connection.sendall(chunk)
    return connection


def waiting_backends_on(table: str, conn: psycopg.Connection) -> list[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
        [table],
    ).fetchall()
    return [pid for (pid,) in rows]


def backend_alive(pid: int, conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]
    ).fetchone()
    return row is not None


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.django_db(transaction=True)
def test_sweep_removes_what_killed_uploads_leave_and_keeps_every_row(
    start_server: Callable[[], LiveServer],
    upload_dirs: tuple[Path, Path],
    built_artifacts: BuiltArtifacts,
    user_token: str,
    settings: Any,
) -> None:
    media, spool = upload_dirs
    auth = {"Authorization": f"Bearer {user_token}"}
    kept_bytes = built_artifacts.bytes("module_gzip")

    # given: one artifact uploaded for real (its row and file must survive everything below)
    server = start_server()
    kept = requests.post(
        f"{server.url}{ARTIFACTS_URL}",
        files={"artifact": ("kept.mender", kept_bytes)},
        headers=auth,
        timeout=60,
    )
    assert kept.status_code == 201, kept.text
    kept_file = media / Artifact.objects.get().file.name

    # when: the web process is killed mid-upload (8 of 64 MiB received)
    stalled = start_unfinished_upload(
        server, user_token, sent=8 * 1024**2, declared=64 * 1024**2
    )
    wait_for(
        lambda: any(p.stat().st_size >= 4 * 1024**2 for p in files_under(spool)),
        60,
        interval=0.05,
        description="the upload to spool 4 MiB",
    )
    kill_server(server)
    stalled.close()

    # then: the spool file is left behind (the failure being fixed)
    assert len(files_under(spool)) == 1

    # when: the web process is killed after moving an upload into storage, before its row commits
    server = start_server()
    locker = psycopg.connect(
        database_url(connection.settings_dict),
        autocommit=False,
    )
    watcher = psycopg.connect(
        database_url(connection.settings_dict),
        autocommit=True,
    )
    locker.execute("LOCK TABLE deployments_app_release IN ACCESS EXCLUSIVE MODE")
    failures: list[BaseException] = []

    def upload_blocked_in_the_database() -> None:
        try:
            requests.post(
                f"{server.url}{ARTIFACTS_URL}",
                files={
                    "artifact": ("moved.mender", built_artifacts.bytes("module_xz"))
                },
                headers=auth,
                timeout=60,
            )
        except requests.ConnectionError as exc:  # the server dies under it
            failures.append(exc)

    uploader = threading.Thread(target=upload_blocked_in_the_database)
    uploader.start()
    try:
        wait_for(
            lambda: len(files_under(media / "artifacts")) == 2,
            60,
            interval=0.05,
            description="the move into storage",
        )
        blocked = wait_for(
            lambda: waiting_backends_on("deployments_app_release", watcher),
            60,
            interval=0.05,
            description="the registering transaction to wait on the release table",
        )
        kill_server(server)
    finally:
        locker.rollback()
        locker.close()
    uploader.join(timeout=60)
    # PostgreSQL rolls the dead client's transaction back once it notices the client is gone.
    for pid in blocked:

        def ended(pid: int = pid) -> bool:
            return not backend_alive(pid, watcher)

        wait_for(ended, 60, interval=0.05, description=f"backend {pid} to end")
    watcher.close()

    # then: a stored file without a row is left behind (the failure being fixed)
    assert len(failures) == 1
    assert Artifact.objects.count() == 1
    orphan = next(p for p in files_under(media / "artifacts") if p != kept_file)
    assert len(files_under(spool)) == 1

    # when: the sweep runs with the default grace, then once everything is past it
    assert sweep_upload_leftovers_task() == {
        "spool_files": 0,
        "orphaned_artifact_files": 0,
    }
    settings.FLOTILLA_UPLOAD_SPOOL_MAX_AGE = 0
    settings.FLOTILLA_ORPHAN_ARTIFACT_GRACE = 0
    swept = sweep_upload_leftovers_task()
    swept_again = sweep_upload_leftovers_task()

    # then: nothing is left, and the artifact row and its file are intact
    assert swept == {"spool_files": 1, "orphaned_artifact_files": 1}
    assert swept_again == {"spool_files": 0, "orphaned_artifact_files": 0}
    assert files_under(spool) == []
    assert not orphan.exists()
    assert files_under(media / "artifacts") == [kept_file]
    artifact = Artifact.objects.get()
    assert media / artifact.file.name == kept_file
    assert sha256_of(kept_file) == hashlib.sha256(kept_bytes).hexdigest()
    assert artifact.size == len(kept_bytes)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_remove_each_leftover_once(
    upload_dirs: tuple[Path, Path],
) -> None:
    # given: 40 abandoned spool files and 40 stored files without rows, all past their grace
    media, spool = upload_dirs
    spool.mkdir(parents=True)
    (media / "artifacts").mkdir()
    old = time.time() - 7200
    for n in range(40):
        leftovers = (
            spool / f"tmp{n:04d}abcd.upload.mender",
            media / "artifacts" / f"00000000-0000-4000-8000-{n:012d}.mender",
        )
        for path in leftovers:
            path.write_bytes(b"x" * 100)
            os.utime(path, (old, old))
    # files that are not the sweep's business stay
    (spool / "notes.txt").write_text("not an upload")
    (media / "artifacts" / "README").write_text("not an artifact")
    os.utime(spool / "notes.txt", (old, old))
    grace = dt.timedelta(hours=1)

    # when: two sweeps (two beats) run at the same time
    counts: list[tuple[int, int]] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        from django.db import connection

        barrier.wait()
        try:
            counts.append(
                (
                    remove_abandoned_spool_files(older_than=grace, limit=1000),
                    remove_orphaned_artifact_files(older_than=grace, limit=1000),
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then: every leftover removed exactly once between them; the others untouched
    assert len(counts) == 2
    assert sum(spool_count for spool_count, _ in counts) == 40
    assert sum(stored for _, stored in counts) == 40
    assert [p.name for p in files_under(spool)] == ["notes.txt"]
    assert [p.name for p in files_under(media / "artifacts")] == ["README"]


@pytest.mark.django_db
def test_sweep_is_bounded_and_spares_files_within_the_grace(
    upload_dirs: tuple[Path, Path],
) -> None:
    media, spool = upload_dirs
    spool.mkdir(parents=True)
    old = time.time() - 7200
    for n in range(5):
        path = spool / f"tmp{n}.upload"
        path.write_bytes(b"x")
        os.utime(path, (old, old))
    (spool / "tmpfresh.upload.mender").write_bytes(b"still arriving")

    first = remove_abandoned_spool_files(older_than=dt.timedelta(hours=1), limit=3)
    second = remove_abandoned_spool_files(older_than=dt.timedelta(hours=1), limit=3)

    assert (first, second) == (3, 2)
    assert [p.name for p in files_under(spool)] == ["tmpfresh.upload.mender"]
