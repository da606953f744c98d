"""Deployments with real Mender 3.4 clients against the real server process (issue 5).

Each client is a sandboxed ``mender`` daemon (tests/e2e/mender_harness.py) whose update module
``probe-sandbox`` "installs" by copying the payload into the client's sandbox; artifacts are
written by the real ``mender-artifact`` and uploaded through the management API.  See
docs/mender-client.md (the device-side sequence; 409 means aborted).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.artifacts import (
    build_failing_release,
    build_module_artifact,
    build_release,
    mender_artifact_missing,
)
from tests.e2e.conftest import DEPLOYMENTS, ManagementAPI, require_e2e
from tests.e2e.mender_harness import MenderClient, MenderFleet, wait_for
from tests.fixtures.live_server import AccessLog, AccessLogEntry

pytestmark = pytest.mark.e2e

NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"
DEVICE_DEPLOYMENTS = "/api/devices/v1/deployments/device/deployments"
DOWNLOAD = "/api/devices/v1/deployments/download/artifacts"
# Short polls; SIGUSR1 makes a client check for an update right away anyway.
POLLS = {"update_poll": 1, "inventory_poll": 5, "retry_poll": 1}
DEPLOYMENT_TIMEOUT = 30.0


@pytest.fixture
def artifact_dir(tmp_path: Path) -> Path:
    require_e2e(mender_artifact_missing())
    directory = tmp_path / "artifacts"
    directory.mkdir()
    return directory


def status_path(deployment_id: str) -> str:
    return f"{DEVICE_DEPLOYMENTS}/{deployment_id}/status"


def log_path(deployment_id: str) -> str:
    return f"{DEVICE_DEPLOYMENTS}/{deployment_id}/log"


def upload(management_api: ManagementAPI, artifact: Path) -> str:
    """Upload through the API; return the artifact id (from ``Location``)."""
    response = management_api.upload_artifact(artifact)
    assert response.status_code == 201, response.text
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def start_accepted_fleet(
    mender_fleet: Callable[..., MenderFleet],
    management_api: ManagementAPI,
    count: int,
    **config: Any,
) -> tuple[MenderFleet, list[str]]:
    """Start ``count`` P-256 clients and accept them; return the fleet and their device ids."""
    fleet = mender_fleet(count, key_type="p256", **{**POLLS, **config})
    return fleet, management_api.accept_clients(fleet.clients)


def diagnostics(
    fleet: MenderFleet,
    management_api: ManagementAPI,
    deployment_id: str,
    access_log: AccessLog,
) -> Callable[[], str]:
    def describe() -> str:
        deployment = management_api.get(f"{DEPLOYMENTS}/{deployment_id}").text
        devices = management_api.get(f"{DEPLOYMENTS}/{deployment_id}/devices").text
        requests = "\n".join(entry.raw for entry in access_log.entries()[-40:])
        calls = "\n".join(
            f"{client.name}: {client.module_calls()}" for client in fleet.clients
        )
        return (
            f"deployment: {deployment}\ndevices: {devices}\n"
            f"module calls:\n{calls}\naccess log (last 40):\n{requests}"
        )

    return describe


def wait_finished(
    management_api: ManagementAPI,
    deployment_id: str,
    describe: Callable[[], str],
    timeout: float = DEPLOYMENT_TIMEOUT,
    prod: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Wait until the deployment is ``finished``; ``prod`` runs about once a second meanwhile."""
    last_prod = [time.monotonic()]

    def finished() -> dict[str, Any] | None:
        if prod is not None and time.monotonic() - last_prod[0] >= 1.0:
            last_prod[0] = time.monotonic()
            prod()
        deployment = management_api.deployment(deployment_id)
        return deployment if deployment["status"] == "finished" else None

    return wait_for(
        finished,
        timeout,
        interval=0.25,
        description=f"deployment {deployment_id} to finish",
        diagnostics=describe,
    )


def poke(clients: list[MenderClient]) -> Callable[[], None]:
    """SIGUSR1 to every running client (check for an update now)."""

    def send() -> None:
        for client in clients:
            if client.is_running():
                client.send_sigusr1()

    return send


def polls_after(access_log: AccessLog, index: int) -> list[AccessLogEntry]:
    return [
        entry
        for entry in access_log.entries()[index:]
        if (entry.method, entry.path) == ("POST", NEXT_V2)
    ]


def assert_no_loop(
    access_log: AccessLog,
    clients: list[MenderClient],
    deployment_id: str,
    describe: Callable[[], str],
) -> None:
    """After the deployment, every client's update checks get 204 and nothing is re-reported."""
    # gunicorn logs a request after answering it: let lines of requests already answered land.
    time.sleep(0.3)
    mark = len(access_log.entries())
    for client in clients:
        client.send_sigusr1()
    # Each client polls at least once more (SIGUSR1 now, then every UpdatePoll second).
    wait_for(
        lambda: len(polls_after(access_log, mark)) >= 2 * len(clients),
        10,
        interval=0.2,
        description=f"{2 * len(clients)} more update checks",
        diagnostics=describe,
    )
    later = access_log.entries()[mark:]
    assert {e.status for e in later if e.path == NEXT_V2} == {204}, describe()
    assert [e.raw for e in later if e.path.startswith(DOWNLOAD)] == [], describe()
    assert [e.raw for e in later if e.path == status_path(deployment_id)] == [], (
        describe()
    )


def test_three_real_clients_install_a_release_from_a_static_group(
    mender_fleet: Callable[..., MenderFleet],
    management_api: ManagementAPI,
    live_server_access_log: AccessLog,
    artifact_dir: Path,
    remove_stored_artifacts: None,
) -> None:
    # given: three accepted clients in a static group and a release uploaded through the API
    fleet, device_ids = start_accepted_fleet(mender_fleet, management_api, 3)
    for device_id in device_ids:
        management_api.set_group(device_id, "e2e-canary")
    artifact, files = build_release(artifact_dir, "release-a1")
    artifact_id = upload(management_api, artifact)

    # when: a deployment of the release to the group is created
    deployment_id = management_api.create_deployment(
        f"{DEPLOYMENTS}/group/e2e-canary",
        name="canary rollout",
        artifact_name="release-a1",
    )
    describe = diagnostics(fleet, management_api, deployment_id, live_server_access_log)

    # then: it finishes with three successes ...
    deployment = wait_finished(
        management_api, deployment_id, describe, prod=poke(fleet.clients)
    )
    assert deployment["statistics"]["status"]["success"] == 3, describe()
    assert deployment["device_count"] == 3
    assert deployment["groups"] == ["e2e-canary"]
    records = management_api.deployment_devices(deployment_id)
    assert {r["id"]: r["status"] for r in records.values()} == dict.fromkeys(
        device_ids, "success"
    )
    # ... every client installed exactly this release, once, without rebooting
    for client in fleet.clients:
        assert client.installed_artifact_name() == "release-a1", client.diagnostics()
        assert client.installed_files() == files
        calls = client.module_calls()
        assert calls.count("ArtifactInstall") == 1, calls
        assert calls.count("ArtifactCommit") == 1, calls
        assert "ArtifactRollback" not in calls, calls
        assert client.blocked_commands() == []
    # ... each client downloaded the artifact exactly once (three clients, three GETs, all 200)
    downloads = live_server_access_log.matching("GET", f"{DOWNLOAD}/{artifact_id}")
    assert [d.status for d in downloads] == [200, 200, 200], describe()
    # ... every status report was accepted with 204, and nobody uploaded a log
    reports = live_server_access_log.matching("PUT", status_path(deployment_id))
    assert reports, describe()
    assert {r.status for r in reports} == {204}, describe()
    assert live_server_access_log.matching("PUT", log_path(deployment_id)) == []
    # ... and no client loops: later update checks get 204, nothing is downloaded again
    assert_no_loop(live_server_access_log, fleet.clients, deployment_id, describe)


def test_a_failing_install_ends_in_failure_and_the_client_log_is_readable(
    mender_fleet: Callable[..., MenderFleet],
    management_api: ManagementAPI,
    live_server_access_log: AccessLog,
    artifact_dir: Path,
    remove_stored_artifacts: None,
) -> None:
    # given: one accepted client and a release its update module fails to install
    fleet, [device_id] = start_accepted_fleet(mender_fleet, management_api, 1)
    client = fleet.clients[0]
    artifact_id = upload(
        management_api, build_failing_release(artifact_dir, "release-b1")
    )

    # when
    deployment_id = management_api.create_deployment(
        name="doomed", artifact_name="release-b1", devices=[device_id]
    )
    describe = diagnostics(fleet, management_api, deployment_id, live_server_access_log)

    # then: the record ends in failure and the deployment is finished
    deployment = wait_finished(
        management_api, deployment_id, describe, prod=poke(fleet.clients)
    )
    assert deployment["statistics"]["status"]["failure"] == 1, describe()
    assert deployment["statistics"]["status"]["success"] == 0
    [record] = management_api.deployment_devices(deployment_id).values()
    assert (record["id"], record["status"]) == (device_id, "failure")
    # ... the module failed and the client rolled back (nothing stays installed)
    calls = client.module_calls()
    assert calls.count("ArtifactInstall") == 1, calls
    assert "ArtifactRollback" in calls, calls
    assert "ArtifactFailure" in calls, calls
    assert "ArtifactCommit" not in calls, calls
    assert client.installed_artifact_name() is None
    assert client.installed_files() == {}
    # ... the client uploaded its deployment log (204) ...
    wait_for(
        lambda: live_server_access_log.matching("PUT", log_path(deployment_id)),
        5,
        description="the log upload",
        diagnostics=describe,
    )
    assert [
        e.status
        for e in live_server_access_log.matching("PUT", log_path(deployment_id))
    ] == [204], describe()
    assert [
        e.status
        for e in live_server_access_log.matching("GET", f"{DOWNLOAD}/{artifact_id}")
    ] == [200]
    assert management_api.deployment_devices(deployment_id)[device_id]["log"] is True
    # ... and the management API returns it as text, with the client's own lines in it
    response = management_api.get(
        f"{DEPLOYMENTS}/{deployment_id}/devices/{device_id}/log"
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert "ArtifactInstall" in text, text
    assert "probe-sandbox: ArtifactInstall fails on request" in text, text
    assert "Running Mender client version" in text, text
    # ... and the failed deployment is not offered again
    assert_no_loop(live_server_access_log, fleet.clients, deployment_id, describe)


# The probe module installs with `cp -a "$tree/files/." "$base/installed/"`, and the daemon's
# PATH starts with the fleet's stub directory.  This `cp` (placed there by the test, the harness
# is untouched) sleeps N seconds first when the payload holds a file `probe-sleep-N`, so
# ArtifactInstall takes long enough to abort the deployment while the client is installing.
_SLOW_CP = """\
#!/bin/sh
for arg in "$@"; do
    for marker in "$arg"/probe-sleep-*; do
        if [ -e "$marker" ]; then
            sleep "${marker##*/probe-sleep-}"
            break 2
        fi
    done
done
exec /bin/cp "$@"
"""
INSTALL_SECONDS = 4


def test_aborting_while_a_client_installs_makes_it_roll_back(
    mender_fleet: Callable[..., MenderFleet],
    management_api: ManagementAPI,
    live_server_access_log: AccessLog,
    artifact_dir: Path,
    remove_stored_artifacts: None,
) -> None:
    # given: a client whose installation of the release takes a few seconds
    fleet = mender_fleet(1, key_type="p256", start=False, **POLLS)
    slow_cp = fleet.stub_dir / "cp"
    slow_cp.write_text(_SLOW_CP)
    slow_cp.chmod(0o755)
    fleet.start()
    client = fleet.clients[0]
    [device_id] = management_api.accept_clients(fleet.clients)
    artifact = build_module_artifact(
        artifact_dir,
        "release-c1",
        {
            "release.txt": b"payload of release-c1\n",
            f"probe-sleep-{INSTALL_SECONDS}": b"",
        },
    )
    upload(management_api, artifact)
    deployment_id = management_api.create_deployment(
        name="to be aborted", artifact_name="release-c1", devices=[device_id]
    )
    describe = diagnostics(fleet, management_api, deployment_id, live_server_access_log)
    client.send_sigusr1()

    # when: the deployment is aborted while the module runs ArtifactInstall
    wait_for(
        lambda: "ArtifactInstall" in client.module_calls(),
        20,
        interval=0.02,
        description="the client to start ArtifactInstall",
        diagnostics=describe,
    )
    response = management_api.put(
        f"{DEPLOYMENTS}/{deployment_id}/status", json={"status": "aborted"}
    )
    assert response.status_code == 204, response.text
    calls_at_abort = client.module_calls()
    assert calls_at_abort[-1] == "ArtifactInstall", (
        f"the install ended before the abort: {calls_at_abort}"
    )

    # then: the deployment is finished at once, with the device aborted
    deployment = management_api.deployment(deployment_id)
    assert deployment["status"] == "finished", describe()
    assert deployment["statistics"]["status"]["aborted"] == 1, describe()
    assert management_api.deployment_devices(deployment_id)[device_id]["status"] == (
        "aborted"
    )
    # ... the client's next status report (pre-commit "installing") gets 409 and it rolls back
    wait_for(
        lambda: live_server_access_log.matching("PUT", status_path(deployment_id), 409),
        INSTALL_SECONDS + 10,
        description="a status report answered 409",
        diagnostics=describe,
    )
    wait_for(
        lambda: "Cleanup" in client.module_calls(),
        10,
        description="the client to roll back and clean up",
        diagnostics=describe,
    )

    def back_to_idle() -> bool:
        # After the rollback it reports failure (409 again), then checks for updates again.
        entries = live_server_access_log.entries()
        first_409 = next(
            i
            for i, e in enumerate(entries)
            if e.path == status_path(deployment_id) and e.status == 409
        )
        return any(e.path == NEXT_V2 for e in entries[first_409:])

    wait_for(
        back_to_idle,
        10,
        description="an update check after the aborted deployment",
        diagnostics=describe,
    )
    calls = client.module_calls()
    assert "ArtifactRollback" in calls[calls.index("ArtifactInstall") :], calls
    assert "ArtifactCommit" not in calls, calls
    assert client.installed_artifact_name() is None, calls
    assert client.installed_files() == {}
    assert "aborted" in client.log_text().lower()
    # ... no status report after the abort was accepted; no log upload (spec §3.4)
    reports = live_server_access_log.matching("PUT", status_path(deployment_id))
    first_409 = next(i for i, e in enumerate(reports) if e.status == 409)
    assert {e.status for e in reports[first_409:]} == {409}, describe()
    assert live_server_access_log.matching("PUT", log_path(deployment_id)) == []
    # ... the record stays aborted and the deployment finished
    deployment = management_api.deployment(deployment_id)
    assert deployment["status"] == "finished"
    assert deployment["statistics"]["status"]["aborted"] == 1
    assert deployment["statistics"]["status"]["failure"] == 0
    assert management_api.deployment_devices(deployment_id)[device_id]["status"] == (
        "aborted"
    )
    # ... and the client goes back to idle: 204 on its update checks, no new download
    assert [
        e.status
        for e in live_server_access_log.matching("GET")
        if e.path.startswith(DOWNLOAD)
    ] == [200]
    assert_no_loop(live_server_access_log, fleet.clients, deployment_id, describe)


def test_a_client_already_on_the_release_is_not_sent_the_download(
    mender_fleet: Callable[..., MenderFleet],
    management_api: ManagementAPI,
    live_server_access_log: AccessLog,
    artifact_dir: Path,
    remove_stored_artifacts: None,
) -> None:
    # given: a client whose current artifact is release-d1, and release-d1 uploaded
    fleet, [device_id] = start_accepted_fleet(
        mender_fleet, management_api, 1, artifact_name="release-d1"
    )
    client = fleet.clients[0]
    artifact, _files = build_release(artifact_dir, "release-d1")
    upload(management_api, artifact)

    # when: release-d1 is deployed to it
    deployment_id = management_api.create_deployment(
        name="same again", artifact_name="release-d1", devices=[device_id]
    )
    describe = diagnostics(fleet, management_api, deployment_id, live_server_access_log)

    # then: its record ends already-installed and the deployment finishes
    deployment = wait_finished(
        management_api, deployment_id, describe, prod=poke(fleet.clients)
    )
    assert deployment["statistics"]["status"]["already-installed"] == 1, describe()
    assert deployment["statistics"]["status"]["success"] == 0
    [record] = management_api.deployment_devices(deployment_id).values()
    assert (record["id"], record["status"]) == (device_id, "already-installed")
    # ... the client was answered 204: no instructions, no download, no status report
    assert {e.status for e in live_server_access_log.matching("POST", NEXT_V2)} == {
        204
    }, describe()
    assert [
        e.raw
        for e in live_server_access_log.matching("GET")
        if e.path.startswith(DOWNLOAD)
    ] == []
    assert live_server_access_log.matching(path=status_path(deployment_id)) == []
    assert client.module_calls() == []
    assert "release-d1" in client.log_text()
    assert_no_loop(live_server_access_log, fleet.clients, deployment_id, describe)
