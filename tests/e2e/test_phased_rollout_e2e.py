"""A phased rollout with real Mender 3.4 clients against the real server process (issue 6).

Four sandboxed clients in a static group get a two-phase deployment: 50 % now, the rest at a
start time a few seconds ahead.  Admission is decided at poll time from the phases' start times
(no beat process runs here), so the clients left out of the first phase must keep getting 204
until the second phase starts, and be admitted on their first poll after it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.artifacts import build_release, mender_artifact_missing
from tests.e2e.conftest import DEPLOYMENTS, ManagementAPI, require_e2e
from tests.e2e.mender_harness import MenderClient, MenderFleet, wait_for
from tests.e2e.test_deployments_e2e import (
    DOWNLOAD,
    NEXT_V2,
    assert_no_loop,
    diagnostics,
    poke,
    polls_after,
    status_path,
    upload,
    wait_finished,
)
from tests.fixtures.live_server import AccessLog

pytestmark = pytest.mark.e2e

# From the deployment's creation to the second phase's start.
SECOND_PHASE_DELAY = 12.0


def _installed(clients: list[MenderClient], release: str) -> list[MenderClient]:
    return [c for c in clients if c.installed_artifact_name() == release]


def test_real_clients_install_phase_by_phase(
    mender_fleet: Callable[..., MenderFleet],
    management_api: ManagementAPI,
    live_server_access_log: AccessLog,
    tmp_path: Path,
    remove_stored_artifacts: None,
) -> None:
    require_e2e(mender_artifact_missing())
    # given: four accepted clients in a static group and a release
    fleet = mender_fleet(
        4, key_type="p256", update_poll=1, inventory_poll=5, retry_poll=1
    )
    clients = fleet.clients
    device_ids = management_api.accept_clients(clients)
    for device_id in device_ids:
        management_api.set_group(device_id, "e2e-phased")
    artifact, files = build_release(tmp_path, "release-p1")
    artifact_id = upload(management_api, artifact)
    downloads_path = f"{DOWNLOAD}/{artifact_id}"

    # when: a phased deployment is created: 50 % now, the rest a few seconds later
    second_start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=SECOND_PHASE_DELAY)
    second_start_monotonic = time.monotonic() + SECOND_PHASE_DELAY
    deployment_id = management_api.create_deployment(
        f"{DEPLOYMENTS}/group/e2e-phased",
        name="phased rollout",
        artifact_name="release-p1",
        phases=[
            {"batch_size": 50},
            {"start_ts": second_start.isoformat().replace("+00:00", "Z")},
        ],
    )
    describe = diagnostics(fleet, management_api, deployment_id, live_server_access_log)
    created = management_api.deployment(deployment_id)
    assert created["device_count"] == 4, describe()
    assert [p["batch_size"] for p in created["phases"]] == [50, 50], describe()

    # then: exactly two clients install during the first phase ...
    prod = poke(clients)
    last_prod = [0.0]

    def first_phase_done() -> bool:
        if time.monotonic() - last_prod[0] >= 1.0:
            last_prod[0] = time.monotonic()
            prod()
        stats = management_api.deployment(deployment_id)["statistics"]["status"]
        return stats["success"] == 2 and len(_installed(clients, "release-p1")) == 2

    wait_for(
        first_phase_done,
        SECOND_PHASE_DELAY - 4,
        interval=0.25,
        description="two successes in the first phase",
        diagnostics=describe,
    )
    first = _installed(clients, "release-p1")
    rest = [c for c in clients if c not in first]
    # ... while the other two keep polling and getting 204 (nothing for them yet)
    mark = len(live_server_access_log.entries())
    for client in rest:
        client.send_sigusr1()
    wait_for(
        lambda: len(polls_after(live_server_access_log, mark)) >= 2 * len(rest),
        min(3.0, second_start_monotonic - time.monotonic() - 0.5),
        interval=0.1,
        description="update checks by the clients left out of the first phase",
        diagnostics=describe,
    )
    assert time.monotonic() < second_start_monotonic, (
        "the first phase took too long to check"
    )
    during_first = live_server_access_log.entries()[mark:]
    assert {e.status for e in during_first if e.path == NEXT_V2} == {204}, describe()
    assert _installed(clients, "release-p1") == first
    assert all(c.module_calls() == [] for c in rest), describe()
    downloads = live_server_access_log.matching("GET", downloads_path)
    assert [d.status for d in downloads] == [200, 200], describe()
    in_first_phase = management_api.deployment(deployment_id)
    assert in_first_phase["status"] == "inprogress", describe()
    assert in_first_phase["statistics"]["status"]["success"] == 2
    assert in_first_phase["statistics"]["status"]["pending"] == 2
    assert [p["device_count"] for p in in_first_phase["phases"]] == [2, 0]
    statuses = {
        r["id"]: r["status"]
        for r in management_api.deployment_devices(deployment_id).values()
    }
    assert sorted(statuses.values()) == ["pending", "pending", "success", "success"]

    # when: the second phase's start time passes (SIGUSR1: check for an update now)
    mark = len(live_server_access_log.entries())
    time.sleep(max(0.0, second_start_monotonic - time.monotonic()) + 0.3)

    # then: the other two install as well and the deployment finishes with four successes
    deployment = wait_finished(management_api, deployment_id, describe, prod=poke(rest))
    assert deployment["statistics"]["status"]["success"] == 4, describe()
    assert [p["device_count"] for p in deployment["phases"]] == [2, 2], describe()
    for client in clients:
        assert client.installed_artifact_name() == "release-p1", client.diagnostics()
        assert client.installed_files() == files
        assert client.module_calls().count("ArtifactCommit") == 1
    # ... the second two were admitted only after the second start and downloaded once each
    records = management_api.deployment_devices(deployment_id)
    for client, device_id in zip(clients, device_ids, strict=True):
        started = dt.datetime.fromisoformat(records[device_id]["started"])
        if client in rest:
            assert started >= second_start, (client.name, records[device_id])
        else:
            assert started < second_start, (client.name, records[device_id])
    later = live_server_access_log.entries()[mark:]
    assert [e.status for e in later if e.path == downloads_path] == [200, 200]
    assert [
        e.status for e in live_server_access_log.matching("GET", downloads_path)
    ] == [200] * 4
    reports = live_server_access_log.matching("PUT", status_path(deployment_id))
    assert {r.status for r in reports} == {204}, describe()
    assert_no_loop(live_server_access_log, clients, deployment_id, describe)
