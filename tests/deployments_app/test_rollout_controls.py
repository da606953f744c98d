"""Rollout controls: dynamic deployments, phases, max_devices, retries, force, history, decommission."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from deployments_app.models import Deployment, DeploymentPhase, DeviceDeployment
from tests import factories
from tests.deployments_app.engine_helpers import (
    DEPLOYMENTS,
    create_deployment,
    create_dynamic_deployment,
    create_filter,
    eq_term,
    install,
    poll,
    report,
    send_inventory,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def open_phase(deployment_id: str, number: int) -> None:
    """Time passes: the phase's start time is now in the past."""
    DeploymentPhase.objects.filter(deployment_id=deployment_id, number=number).update(
        start_ts=timezone.now() - dt.timedelta(seconds=1)
    )


def later(seconds: int = 3600) -> str:
    return (timezone.now() + dt.timedelta(seconds=seconds)).isoformat()


# ------------------------------------------------------------------ dynamic ordering (spec §1.5 example)


def test_dynamic_chain_in_correct_creation_order_reaches_v3(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:30:01")
    factories.artifact("v2", ["probe-device"])
    factories.artifact("v3", ["probe-device"])
    on_v1 = create_filter(management_client, "on-v1", [eq_term("artifact_name", "v1")])
    on_v2 = create_filter(management_client, "on-v2", [eq_term("artifact_name", "v2")])
    send_inventory(client, token, artifact_name="v1", device_type="probe-device")

    to_v2 = create_dynamic_deployment(
        management_client, name="to-v2", artifact_name="v2", filter_id=on_v1
    )
    to_v3 = create_dynamic_deployment(
        management_client, name="to-v3", artifact_name="v3", filter_id=on_v2
    )

    assert poll(client, token, "v1").json()["id"] == to_v2
    install(client, token, to_v2)
    response = poll(
        client, token, "v2"
    )  # the poll reports artifact_name=v2: now in group on-v2
    assert response.json()["id"] == to_v3
    install(client, token, to_v3)
    assert poll(client, token, "v3").status_code == 204


def test_dynamic_chain_in_reversed_order_stops_at_v2(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:31:01")
    factories.artifact("v2", ["probe-device"])
    factories.artifact("v3", ["probe-device"])
    on_v1 = create_filter(management_client, "on-v1", [eq_term("artifact_name", "v1")])
    on_v2 = create_filter(management_client, "on-v2", [eq_term("artifact_name", "v2")])
    send_inventory(client, token, artifact_name="v1", device_type="probe-device")

    to_v3 = create_dynamic_deployment(
        management_client, name="to-v3", artifact_name="v3", filter_id=on_v2
    )
    to_v2 = create_dynamic_deployment(
        management_client, name="to-v2", artifact_name="v2", filter_id=on_v1
    )

    assert poll(client, token, "v1").json()["id"] == to_v2
    install(client, token, to_v2)
    assert poll(client, token, "v2").status_code == 204
    assert poll(client, token, "v2").status_code == 204
    assert not DeviceDeployment.objects.filter(deployment_id=to_v3).exists()


def test_dynamic_deployment_records_snapshot_and_never_finishes_by_itself(
    client: APIClient, management_client: APIClient
) -> None:
    (d1, t1), (d2, t2) = (
        factories.accepted_device(f"02:00:00:00:32:0{i}") for i in range(2)
    )
    factories.artifact("v2", ["probe-device"])
    send_inventory(client, t1, color="blue")
    send_inventory(client, t2, color="red")
    blue = create_filter(management_client, "blue", [eq_term("color", "blue")])

    deployment_id = create_dynamic_deployment(
        management_client, name="blue-v2", artifact_name="v2", filter_id=blue
    )
    detail = management_client.get(f"{DEPLOYMENTS}/{deployment_id}").json()
    assert detail["dynamic"] is True
    assert detail["initial_device_count"] == 1
    assert detail["filter"]["id"] == blue
    assert detail["filter"]["terms"] == [eq_term("color", "blue")]
    assert detail["status"] == "pending"

    assert poll(client, t2, "v1").status_code == 204
    assert poll(client, t1, "v1").json()["id"] == deployment_id
    install(client, t1, deployment_id)
    assert Deployment.objects.get(pk=deployment_id).status == "inprogress"

    send_inventory(client, t2, color="blue")  # joins later: admitted
    assert poll(client, t2, "v1").json()["id"] == deployment_id


def test_max_devices_finishes_dynamic_deployment_and_admits_nobody_else(
    client: APIClient, management_client: APIClient
) -> None:
    devices = [factories.accepted_device(f"02:00:00:00:33:0{i}") for i in range(3)]
    factories.artifact("v2", ["probe-device"])
    for _, token in devices:
        send_inventory(client, token, fleet="a")
    fleet = create_filter(management_client, "fleet", [eq_term("fleet", "a")])
    deployment_id = create_dynamic_deployment(
        management_client,
        name="capped",
        artifact_name="v2",
        filter_id=fleet,
        max_devices=2,
    )

    for _, token in devices[:2]:
        assert poll(client, token, "v1").json()["id"] == deployment_id
    assert poll(client, devices[2][1], "v1").status_code == 204
    for _, token in devices[:2]:
        install(client, token, deployment_id)

    assert Deployment.objects.get(pk=deployment_id).status == "finished"
    assert poll(client, devices[2][1], "v1").status_code == 204


# ------------------------------------------------------------------ phases


def test_phase_batch_counts_reject_empty_batch_naming_it(
    client: APIClient, management_client: APIClient
) -> None:
    devices = factories.bulk_accepted_devices(11)
    factories.artifact("v2", ["probe-device"])
    phases = [
        {"batch_size": 10},
        {"batch_size": 20, "start_ts": later(100)},
        {"batch_size": 5, "start_ts": later(200)},
        {"start_ts": later(300)},
    ]

    response = management_client.post(
        DEPLOYMENTS,
        {
            "name": "p",
            "artifact_name": "v2",
            "devices": [str(d.id) for d, _ in devices],
            "phases": phases,
        },
        format="json",
    )

    assert response.status_code == 400
    assert "Batch: (3) will be empty" in response.json()["error"]
    assert Deployment.objects.count() == 0


def test_static_phased_rollout_admits_exactly_first_batch_before_second_start(
    client: APIClient, management_client: APIClient
) -> None:
    devices = factories.bulk_accepted_devices(10)
    factories.artifact("v2", ["probe-device"])
    deployment_id = create_deployment(
        management_client,
        name="phased",
        artifact_name="v2",
        devices=[str(d.id) for d, _ in devices],
        phases=[{"batch_size": 30}, {"start_ts": later()}],
    )
    detail = management_client.get(f"{DEPLOYMENTS}/{deployment_id}").json()
    assert [p["batch_size"] for p in detail["phases"]] == [30, 70]

    answers = [poll(client, token, "v1").status_code for _, token in devices]
    assert answers.count(200) == 3
    assert answers.count(204) == 7

    open_phase(deployment_id, 2)
    late = [poll(client, token, "v1").status_code for _, token in devices]
    assert late.count(200) == 10
    assert [
        p["device_count"]
        for p in management_client.get(f"{DEPLOYMENTS}/{deployment_id}").json()[
            "phases"
        ]
    ] == [
        3,
        7,
    ]


def test_devices_first_polling_after_a_later_phase_started_fill_earlier_batches_first(
    client: APIClient, management_client: APIClient
) -> None:
    # given a 2 / 1 / 1 rollout whose second phase started before any device polled
    devices = factories.bulk_accepted_devices(4)
    factories.artifact("v2", ["probe-device"])
    deployment_id = create_deployment(
        management_client,
        name="late-pollers",
        artifact_name="v2",
        devices=[str(d.id) for d, _ in devices],
        phases=[
            {"batch_size": 50},
            {"batch_size": 25, "start_ts": later()},
            {"start_ts": later(7200)},
        ],
    )
    open_phase(deployment_id, 2)

    # when every device polls
    answers = [poll(client, token, "v1").status_code for _, token in devices]

    # then the two started batches admit three devices, each batch within its own size
    assert answers == [200, 200, 200, 204]
    phases = DeploymentPhase.objects.filter(deployment_id=deployment_id).order_by(
        "number"
    )
    assert [p.device_count for p in phases] == [2, 1, 0]


def test_dynamic_phased_rollout_last_phase_takes_later_joiners(
    client: APIClient, management_client: APIClient
) -> None:
    devices = factories.bulk_accepted_devices(14)
    factories.artifact("v2", ["probe-device"])
    members, joiners = devices[:10], devices[10:]
    for _, token in members:
        send_inventory(client, token, ring="canary")
    ring = create_filter(management_client, "ring", [eq_term("ring", "canary")])
    deployment_id = create_dynamic_deployment(
        management_client,
        name="dyn-phased",
        artifact_name="v2",
        filter_id=ring,
        phases=[{"batch_size": 80}, {"start_ts": later()}],
    )

    first = [poll(client, token, "v1").status_code for _, token in members]
    assert first.count(200) == 8

    open_phase(deployment_id, 2)
    for _, token in joiners:
        send_inventory(client, token, ring="canary")
    rest = [poll(client, token, "v1").status_code for _, token in [*members, *joiners]]
    assert (
        rest.count(200) == 14
    )  # 8 resumed + 2 remaining members + 4 joiners, the last phase is unbounded
    phases = DeploymentPhase.objects.filter(deployment_id=deployment_id).order_by(
        "number"
    )
    assert [p.device_count for p in phases] == [8, 6]


def test_dynamic_phased_rollout_shrinking_group_all_finish_in_phase_one(
    client: APIClient, management_client: APIClient
) -> None:
    devices = factories.bulk_accepted_devices(10)
    factories.artifact("v2", ["probe-device"])
    for _, token in devices:
        send_inventory(client, token, ring="canary")
    ring = create_filter(management_client, "ring", [eq_term("ring", "canary")])
    deployment_id = create_dynamic_deployment(
        management_client,
        name="shrink",
        artifact_name="v2",
        filter_id=ring,
        phases=[{"batch_size": 80}, {"start_ts": later()}],
    )
    for _, token in devices[:3]:
        send_inventory(client, token, ring="gone")

    remaining = devices[3:]
    answers = [poll(client, token, "v1").status_code for _, token in remaining]

    assert answers == [200] * 7
    phase_one = DeploymentPhase.objects.get(deployment_id=deployment_id, number=1)
    assert phase_one.device_count == 7


def test_scheduled_status_until_first_phase_starts(
    client: APIClient, management_client: APIClient
) -> None:
    (device, token), *_ = factories.bulk_accepted_devices(2)
    factories.artifact("v2", ["probe-device"])
    deployment_id = create_deployment(
        management_client,
        name="later",
        artifact_name="v2",
        devices=[str(device.id)],
        phases=[{"batch_size": 100, "start_ts": later()}],
    )

    assert Deployment.objects.get(pk=deployment_id).status == "scheduled"
    assert poll(client, token, "v1").status_code == 204

    open_phase(deployment_id, 1)
    # admission reads the clock: no need to wait for beat
    assert poll(client, token, "v1").json()["id"] == deployment_id


# ------------------------------------------------------------------ retries


@pytest.mark.parametrize(
    ("retries", "outcomes", "final"),
    [
        (2, ["failure", "failure", "success"], "success"),
        (1, ["failure", "failure"], "failure"),
    ],
)
def test_retries(
    retries: int,
    outcomes: list[str],
    final: str,
    client: APIClient,
    management_client: APIClient,
) -> None:
    device, token = factories.accepted_device("02:00:00:00:34:01")
    factories.artifact("v2", ["probe-device"])
    deployment_id = create_deployment(
        management_client,
        name="retry",
        artifact_name="v2",
        devices=[str(device.id)],
        retries=retries,
    )

    for outcome in outcomes:
        response = poll(client, token, "v1")
        assert response.json()["id"] == deployment_id
        install(client, token, deployment_id, outcome=outcome)

    record = DeviceDeployment.objects.get()
    assert record.status == final
    assert record.attempts == len(outcomes)
    assert Deployment.objects.get(pk=deployment_id).status == "finished"
    listed = management_client.get(f"{DEPLOYMENTS}/{deployment_id}/devices").json()[0]
    assert (listed["attempts"], listed["retries"]) == (len(outcomes), retries)
    assert poll(client, token, "v1").status_code == 204


# ------------------------------------------------------------------ history reset, device abort, decommission


def test_history_reset_makes_device_eligible_again(
    client: APIClient, management_client: APIClient
) -> None:
    (device, token), (other, _) = (
        factories.accepted_device(f"02:00:00:00:35:0{i}") for i in range(2)
    )
    factories.artifact("v2", ["probe-device"])
    deployment_id = create_deployment(
        management_client,
        name="r",
        artifact_name="v2",
        devices=[str(device.id), str(other.id)],
    )
    assert poll(client, token, "v1").json()["id"] == deployment_id
    install(client, token, deployment_id, outcome="failure")
    assert poll(client, token, "v1").status_code == 204

    response = management_client.delete(f"{DEPLOYMENTS}/devices/{device.id}/history")

    assert response.status_code == 204
    assert poll(client, token, "v1").json()["id"] == deployment_id
    assert (
        DeviceDeployment.objects.filter(device=device, deleted__isnull=False).count()
        == 1
    )
    stats = management_client.get(f"{DEPLOYMENTS}/{deployment_id}/statistics").json()
    assert (stats["failure"], stats["pending"]) == (0, 2)


def test_device_abort_and_decommission_let_static_deployments_finish(
    client: APIClient, management_client: APIClient
) -> None:
    (d1, t1), (d2, _t2), (d3, t3) = (
        factories.accepted_device(f"02:00:00:00:36:0{i}") for i in range(3)
    )
    factories.artifact("v2", ["probe-device"])
    deployment_id = create_deployment(
        management_client,
        name="r",
        artifact_name="v2",
        devices=[str(d1.id), str(d2.id), str(d3.id)],
    )
    poll(client, t1, "v1")
    assert report(client, t1, deployment_id, "installing").status_code == 204
    assert poll(client, t3, "v1").status_code == 200
    install(client, t3, deployment_id)

    assert management_client.delete(f"{DEPLOYMENTS}/devices/{d1.id}").status_code == 204
    assert report(client, t1, deployment_id, "success").status_code == 409
    assert Deployment.objects.get(pk=deployment_id).status == "inprogress"

    assert (
        management_client.delete(
            f"/api/management/v2/devauth/devices/{d2.id}"
        ).status_code
        == 204
    )

    statuses = dict(DeviceDeployment.objects.values_list("device_id", "status"))
    assert statuses == {d1.id: "aborted", d2.id: "decommissioned", d3.id: "success"}
    assert Deployment.objects.get(pk=deployment_id).status == "finished"
