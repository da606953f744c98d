"""The deployment engine through its HTTP interfaces: create, expand, next, status, log, abort, finish."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from deployments_app.models import Deployment, DeviceDeployment
from tests import factories
from tests.deployments_app.engine_helpers import (
    DEPLOYMENTS,
    DEVICE_DEPLOYMENTS,
    NEXT_V1,
    clear_group,
    create_deployment,
    create_group_deployment,
    install,
    poll,
    report,
    set_group,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def snapshot() -> list[tuple]:
    """Everything the engine may write, to prove a refused request changed nothing."""
    deployments = list(
        Deployment.objects.order_by("id").values_list(
            "id", "status", "device_count", "finished"
        )
    )
    records = list(
        DeviceDeployment.objects.order_by("id").values_list(
            "id",
            "status",
            "substate",
            "admitted_at",
            "artifact_id",
            "attempts",
            "has_log",
        )
    )
    return [*deployments, *records]


# ------------------------------------------------------------------ the whole cycle


def test_static_deployment_cycle_success(
    client: APIClient, management_client: APIClient
) -> None:
    # given
    devices = [factories.accepted_device(f"02:00:00:00:10:0{i}") for i in range(3)]
    factories.artifact("release-1", ["probe-device"], size=6000)
    deployment_id = create_deployment(
        management_client,
        name="rollout",
        artifact_name="release-1",
        devices=[str(d.id) for d, _ in devices],
    )

    # then: expanded into one pending row per target, deployment pending
    deployment = Deployment.objects.get(pk=deployment_id)
    assert deployment.status == "pending"
    assert deployment.expanded_at is not None
    assert deployment.device_count == 3
    assert (
        DeviceDeployment.objects.filter(deployment=deployment, status="pending").count()
        == 3
    )

    # when each device polls and installs
    for _device, token in devices:
        response = poll(client, token, "original")
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == deployment_id
        assert body["artifact"]["artifact_name"] == "release-1"
        assert body["artifact"]["device_types_compatible"] == ["probe-device"]
        assert body["artifact"]["source"]["uri"].startswith("http")
        install(client, token, deployment_id)

    # then
    deployment.refresh_from_db()
    assert deployment.status == "finished"
    assert deployment.finished is not None
    stats = management_client.get(f"{DEPLOYMENTS}/{deployment_id}/statistics").json()
    assert stats["success"] == 3
    assert sum(stats.values()) == 3
    detail = management_client.get(f"{DEPLOYMENTS}/{deployment_id}").json()
    assert detail["statistics"]["total_size"] == 18000
    assert detail["status"] == "finished"
    for _device, token in devices:
        assert poll(client, token, "release-1").status_code == 204


def test_deployment_stays_pending_until_progress_and_never_finishes_while_active(
    client: APIClient, management_client: APIClient
) -> None:
    (d1, t1), (d2, t2) = (
        factories.accepted_device(f"02:00:00:00:11:0{i}") for i in range(2)
    )
    factories.artifact("release-1", ["probe-device"])
    deployment_id = create_deployment(
        management_client,
        name="r",
        artifact_name="release-1",
        devices=[str(d1.id), str(d2.id)],
    )

    assert poll(client, t1, "original").status_code == 200
    assert Deployment.objects.get(pk=deployment_id).status == "pending"
    assert report(client, t1, deployment_id, "downloading").status_code == 204
    assert Deployment.objects.get(pk=deployment_id).status == "inprogress"
    install(client, t1, deployment_id)
    assert Deployment.objects.get(pk=deployment_id).status == "inprogress"

    assert poll(client, t2, "original").status_code == 200
    install(client, t2, deployment_id, outcome="failure")
    deployment = Deployment.objects.get(pk=deployment_id)
    assert deployment.status == "finished"
    assert (
        management_client.get(f"{DEPLOYMENTS}/{deployment_id}/statistics").json()[
            "failure"
        ]
        == 1
    )


def test_repeated_polls_return_same_deployment_with_fresh_link(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:12:01")
    factories.artifact("release-1", ["probe-device"])
    deployment_id = create_deployment(
        management_client, name="r", artifact_name="release-1", devices=[str(device.id)]
    )

    first = poll(client, token, "original").json()
    assert report(client, token, deployment_id, "downloading").status_code == 204
    second = poll(client, token, "original").json()

    assert first["id"] == second["id"] == deployment_id
    assert DeviceDeployment.objects.get().status == "downloading"


# ------------------------------------------------------------------ next: artifact selection


def test_noartifact_for_device_type_is_204_and_final(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:13:01")
    factories.artifact("release-1", ["other-device"])
    deployment_id = create_deployment(
        management_client, name="r", artifact_name="release-1", devices=[str(device.id)]
    )

    response = poll(client, token, "original", device_type="probe-device")

    assert response.status_code == 204
    assert DeviceDeployment.objects.get().status == "noartifact"
    deployment = Deployment.objects.get(pk=deployment_id)
    assert deployment.status == "finished"


def test_already_installed_is_204_unless_forced(
    client: APIClient, management_client: APIClient
) -> None:
    (d1, t1), (d2, t2) = (
        factories.accepted_device(f"02:00:00:00:14:0{i}") for i in range(2)
    )
    factories.artifact("release-1", ["probe-device"])
    plain = create_deployment(
        management_client, name="plain", artifact_name="release-1", devices=[str(d1.id)]
    )
    forced = create_deployment(
        management_client,
        name="forced",
        artifact_name="release-1",
        devices=[str(d2.id)],
        force_installation=True,
    )

    assert poll(client, t1, "release-1").status_code == 204
    assert (
        DeviceDeployment.objects.get(deployment_id=plain).status == "already-installed"
    )
    assert poll(client, t2, "release-1").status_code == 200
    assert DeviceDeployment.objects.get(deployment_id=forced).status == "pending"
    stats = management_client.get(f"{DEPLOYMENTS}/{plain}").json()["statistics"]
    assert stats["total_size"] == 0


def test_artifact_selection_by_depends_then_smallest_size(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:15:01")
    big = factories.artifact("release-2", ["probe-device"], size=9000)
    delta_for_other = factories.artifact(
        "release-2",
        ["probe-device"],
        size=100,
        depends={"rootfs-image.checksum": "other"},
    )
    delta = factories.artifact(
        "release-2",
        ["probe-device"],
        size=500,
        depends={"rootfs-image.checksum": "abc"},
    )
    create_deployment(
        management_client, name="r", artifact_name="release-2", devices=[str(device.id)]
    )

    response = poll(client, token, "release-1", **{"rootfs-image.checksum": "abc"})

    assert response.status_code == 200
    assert response.json()["artifact"]["id"] == str(delta.id)
    assert big.id != delta_for_other.id


def test_conflicting_request_fails_the_record_with_409(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:16:01")
    factories.artifact("release-1", ["probe-device"])
    create_deployment(
        management_client, name="r", artifact_name="release-1", devices=[str(device.id)]
    )
    assert poll(client, token, "original").status_code == 200

    response = poll(client, token, "something-else")

    assert response.status_code == 409
    assert set(response.json()) == {"error", "request_id"}
    assert DeviceDeployment.objects.get().status == "failure"


def test_nothing_for_the_device_is_204_without_any_write(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:17:01")
    poll(client, token, "original")  # first poll records the reported inventory

    with CaptureQueriesContext(connection) as queries:
        response = poll(client, token, "original")

    assert response.status_code == 204
    writes = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []


def test_v1_get_fallback_offers_the_deployment(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:18:01")
    factories.artifact("release-1", ["probe-device"])
    deployment_id = create_deployment(
        management_client, name="r", artifact_name="release-1", devices=[str(device.id)]
    )

    response = client.get(
        NEXT_V1,
        {"artifact_name": "original", "device_type": "probe-device"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 200
    assert response.json()["id"] == deployment_id


# ------------------------------------------------------------------ ordering rule (static)


def test_ordering_correct_creation_order_reaches_v3(
    client: APIClient, management_client: APIClient
) -> None:
    # given: device D runs v1 and is in group-v1
    device, token = factories.accepted_device("02:00:00:00:19:01")
    factories.artifact("v2", ["probe-device"])
    factories.artifact("v3", ["probe-device"])
    set_group(management_client, device.id, "group-v1")

    # (1) deploy v2 to group-v1, the device installs it and is regrouped
    first = create_group_deployment(
        management_client, "group-v1", name="to-v2", artifact_name="v2"
    )
    assert poll(client, token, "v1").json()["id"] == first
    install(client, token, first)
    set_group(management_client, device.id, "group-v2")

    # (2) deploy v3 to group-v2, created later: the device moves on to v3
    second = create_group_deployment(
        management_client, "group-v2", name="to-v3", artifact_name="v3"
    )
    response = poll(client, token, "v2")
    assert response.json()["id"] == second
    assert response.json()["artifact"]["artifact_name"] == "v3"


def test_ordering_reversed_creation_order_never_gives_the_older_deployment(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:1a:01")
    other, other_token = factories.accepted_device("02:00:00:00:1a:02")
    factories.artifact("v2", ["probe-device"])
    factories.artifact("v3", ["probe-device"])
    set_group(management_client, device.id, "group-v1")
    set_group(management_client, other.id, "group-v2")

    # (1) v3 to group-v2 first, then (2) v2 to group-v1
    to_v3 = create_group_deployment(
        management_client, "group-v2", name="to-v3", artifact_name="v3"
    )
    to_v2 = create_group_deployment(
        management_client, "group-v1", name="to-v2", artifact_name="v2"
    )

    assert poll(client, token, "v1").json()["id"] == to_v2
    install(client, token, to_v2)
    set_group(management_client, device.id, "group-v2")

    assert poll(client, token, "v2").status_code == 204
    assert not DeviceDeployment.objects.filter(
        deployment_id=to_v3, device=device
    ).exists()
    assert poll(client, other_token, "v2").json()["id"] == to_v3


def test_ordering_rule_skips_deployments_older_than_the_last_finished(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:1b:01")
    factories.artifact("a", ["probe-device"])
    factories.artifact("b", ["probe-device"])
    older = create_deployment(
        management_client, name="older", artifact_name="a", devices=[str(device.id)]
    )
    newer = create_deployment(
        management_client, name="newer", artifact_name="b", devices=[str(device.id)]
    )

    # the oldest comes first
    assert poll(client, token, "v0").json()["id"] == older
    install(client, token, older)
    assert poll(client, token, "a").json()["id"] == newer


# ------------------------------------------------------------------ static snapshot


def test_group_is_resolved_as_of_creation_even_when_expanded_later(
    client: APIClient, management_client: APIClient
) -> None:
    members = [factories.accepted_device(f"02:00:00:00:1c:0{i}") for i in range(3)]
    late, late_token = factories.accepted_device("02:00:00:00:1c:09")
    for device, _ in members:
        set_group(management_client, device.id, "fleet")
    factories.artifact("release-1", ["probe-device"])

    # when: the expansion only runs when the outer transaction commits, after the group changed
    with transaction.atomic():
        deployment_id = create_group_deployment(
            management_client, "fleet", name="r", artifact_name="release-1"
        )
        set_group(management_client, late.id, "fleet")
        clear_group(management_client, members[0][0].id, "fleet")
        assert not DeviceDeployment.objects.filter(deployment_id=deployment_id).exists()

    # then: exactly the members at the creation instant
    targets = set(
        DeviceDeployment.objects.filter(deployment_id=deployment_id).values_list(
            "device_id", flat=True
        )
    )
    assert targets == {device.id for device, _ in members}
    assert poll(client, late_token, "original").status_code == 204
    assert poll(client, members[0][1], "original").json()["id"] == deployment_id


def test_device_polling_before_expansion_gets_its_deployment(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:1d:01")
    set_group(management_client, device.id, "fleet")
    factories.artifact("release-1", ["probe-device"])

    with transaction.atomic():
        deployment_id = create_group_deployment(
            management_client, "fleet", name="r", artifact_name="release-1"
        )
        assert Deployment.objects.get(pk=deployment_id).expanded_at is None
        response = poll(client, token, "original")

    assert response.status_code == 200
    assert response.json()["id"] == deployment_id
    assert DeviceDeployment.objects.filter(deployment_id=deployment_id).count() == 1


# ------------------------------------------------------------------ creation 4xx (§1.8)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"artifact_name": "release-1", "all_devices": True}, 400),
        ({"name": "", "artifact_name": "release-1", "all_devices": True}, 400),
        ({"name": "r", "all_devices": True}, 400),
        ({"name": "r", "artifact_name": "release-1"}, 400),
        ({"name": "r", "artifact_name": "release-1", "devices": []}, 400),
        (
            {
                "name": "r",
                "artifact_name": "release-1",
                "devices": ["DEVICE"],
                "all_devices": True,
            },
            400,
        ),
        ({"name": "r", "artifact_name": "release-1", "devices": [""]}, 400),
        ({"name": "r", "artifact_name": "no-such-release", "devices": ["DEVICE"]}, 422),
    ],
)
def test_create_deployment_rejects_invalid_requests(
    body: dict[str, Any], code: int, management_client: APIClient
) -> None:
    device, _ = factories.accepted_device("02:00:00:00:1e:01")
    factories.artifact("release-1", ["probe-device"])
    body = {
        key: (
            [str(device.id) if v == "DEVICE" else v for v in value]
            if key == "devices"
            else value
        )
        for key, value in body.items()
    }

    response = management_client.post(DEPLOYMENTS, body, format="json")

    assert response.status_code == code
    assert set(response.json()) == {"error", "request_id"}
    assert Deployment.objects.count() == 0


def test_create_for_empty_group_is_400_and_for_unknown_artifact_422(
    management_client: APIClient,
) -> None:
    device, _ = factories.accepted_device("02:00:00:00:1f:01")
    set_group(management_client, device.id, "fleet")
    factories.artifact("release-1", ["probe-device"])

    empty = management_client.post(
        f"{DEPLOYMENTS}/group/nobody",
        {"name": "r", "artifact_name": "release-1"},
        format="json",
    )
    no_artifact = management_client.post(
        f"{DEPLOYMENTS}/group/fleet",
        {"name": "r", "artifact_name": "nope"},
        format="json",
    )
    with_devices = management_client.post(
        f"{DEPLOYMENTS}/group/fleet",
        {"name": "r", "artifact_name": "release-1", "devices": [str(device.id)]},
        format="json",
    )

    assert (empty.status_code, no_artifact.status_code, with_devices.status_code) == (
        400,
        422,
        400,
    )
    assert Deployment.objects.count() == 0


def test_identical_active_deployment_is_409(management_client: APIClient) -> None:
    device, _ = factories.accepted_device("02:00:00:00:20:01")
    factories.artifact("release-1", ["probe-device"])
    body = {"name": "r", "artifact_name": "release-1", "devices": [str(device.id)]}
    first = management_client.post(DEPLOYMENTS, body, format="json")

    again = management_client.post(DEPLOYMENTS, body, format="json")

    assert first.status_code == 201
    assert first["Location"].startswith("./management/v1/deployments/deployments/")
    assert again.status_code == 409
    assert Deployment.objects.count() == 1


def test_create_request_is_fast_for_any_group_size(
    management_client: APIClient,
) -> None:
    """Creation never walks the group: one COUNT plus the insert, whatever the size."""
    device, _ = factories.accepted_device("02:00:00:00:21:01")
    set_group(management_client, device.id, "fleet")
    factories.artifact("release-1", ["probe-device"])

    with CaptureQueriesContext(connection) as queries:
        create_group_deployment(
            management_client, "fleet", name="r", artifact_name="release-1"
        )

    inserts = [
        q["sql"]
        for q in queries
        if 'INSERT INTO "deployments_app_devicedeployment"' in q["sql"]
    ]
    assert len(inserts) <= 1  # the eager expansion's single set-based INSERT … SELECT


# ------------------------------------------------------------------ status reports 4xx (§2.3)


@pytest.fixture
def active(client: APIClient, management_client: APIClient) -> tuple[str, str]:
    device, token = factories.accepted_device("02:00:00:00:22:01")
    factories.artifact("release-1", ["probe-device"])
    deployment_id = create_deployment(
        management_client, name="r", artifact_name="release-1", devices=[str(device.id)]
    )
    assert poll(client, token, "original").status_code == 200
    assert report(client, token, deployment_id, "downloading").status_code == 204
    return deployment_id, token


@pytest.mark.parametrize(
    "body",
    [
        {"status": "pending"},
        {"status": "aborted"},
        {"status": "bogus"},
        {"status": "installing", "substate": "x" * 201},
        {},
    ],
)
def test_status_report_rejects_invalid_bodies_with_400(
    body: dict, client: APIClient, active: tuple[str, str]
) -> None:
    deployment_id, token = active
    before = snapshot()

    response = client.put(
        f"{DEVICE_DEPLOYMENTS}/{deployment_id}/status",
        body,
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 400
    assert set(response.json()) == {"error", "request_id"}
    assert snapshot() == before


def test_status_report_for_unknown_deployment_is_404(
    client: APIClient, active: tuple[str, str]
) -> None:
    _, token = active
    before = snapshot()

    response = report(
        client, token, "00000000-0000-4000-8000-000000000000", "installing"
    )

    assert response.status_code == 404
    assert snapshot() == before


def test_repeated_status_is_a_noop_and_substate_is_kept(
    client: APIClient, active: tuple[str, str]
) -> None:
    deployment_id, token = active
    assert (
        report(
            client, token, deployment_id, "installing", substate="step 1"
        ).status_code
        == 204
    )
    before = snapshot()

    response = report(client, token, deployment_id, "installing", substate="step 2")

    assert response.status_code == 204
    assert snapshot() == before
    assert DeviceDeployment.objects.get().substate == "step 1"


def test_final_status_is_never_overwritten(
    client: APIClient, active: tuple[str, str]
) -> None:
    deployment_id, token = active
    assert report(client, token, deployment_id, "success").status_code == 204
    before = snapshot()

    response = report(client, token, deployment_id, "failure")

    assert response.status_code == 409
    assert snapshot() == before
    assert DeviceDeployment.objects.get().status == "success"


# ------------------------------------------------------------------ logs (§2.8)


def test_log_upload_replaces_and_reads_back_as_text(
    client: APIClient, management_client: APIClient, active: tuple[str, str]
) -> None:
    deployment_id, token = active
    url = f"{DEVICE_DEPLOYMENTS}/{deployment_id}/log"
    first = {
        "messages": [
            {"timestamp": "2026-11-28T10:00:00Z", "level": "info", "message": "one"}
        ]
    }
    second = {
        "messages": [
            {
                "timestamp": "2026-11-28T10:00:01Z",
                "level": "error",
                "message": "two <b>",
            },
            {"timestamp": "2026-11-28T10:00:02Z", "level": "info", "message": "three"},
        ]
    }
    assert (
        client.put(
            url, first, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
        ).status_code
        == 204
    )
    assert (
        client.put(
            url, second, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
        ).status_code
        == 204
    )

    device_id = DeviceDeployment.objects.get().device_id
    response = management_client.get(
        f"{DEPLOYMENTS}/{deployment_id}/devices/{device_id}/log"
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == (
        "2026-11-28T10:00:01Z error: two <b>\n2026-11-28T10:00:02Z info: three\n"
    )
    assert DeviceDeployment.objects.get().has_log is True


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"level": "info", "message": "x"}]},
        {"nope": 1},
        {"messages": "x"},
    ],
)
def test_invalid_log_is_400_and_stores_nothing(
    body: dict, client: APIClient, active: tuple[str, str]
) -> None:
    deployment_id, token = active
    before = snapshot()

    response = client.put(
        f"{DEVICE_DEPLOYMENTS}/{deployment_id}/log",
        body,
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 400
    assert snapshot() == before


def test_log_for_deployment_without_record_is_404(
    client: APIClient, active: tuple[str, str]
) -> None:
    _, token = active
    body = {
        "messages": [
            {"timestamp": "2026-11-28T10:00:00Z", "level": "info", "message": "x"}
        ]
    }

    response = client.put(
        f"{DEVICE_DEPLOYMENTS}/00000000-0000-4000-8000-000000000000/log",
        body,
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 404


# ------------------------------------------------------------------ next 4xx (§2.4)


@pytest.mark.parametrize(
    "body",
    [
        {"device_provides": {"device_type": "probe-device"}},
        {"device_provides": {"artifact_name": "x"}},
        {"device_provides": {"artifact_name": "", "device_type": "probe-device"}},
        {
            "device_provides": {
                "artifact_name": "x" * 4097,
                "device_type": "probe-device",
            }
        },
        {"device_provides": "nope"},
        [],
    ],
)
def test_next_rejects_invalid_requests_with_400(
    body: Any, client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:23:01")
    factories.artifact("release-1", ["probe-device"])
    create_deployment(
        management_client, name="r", artifact_name="release-1", devices=[str(device.id)]
    )
    before = snapshot()

    response = client.post(
        "/api/devices/v2/deployments/device/deployments/next",
        body,
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 400
    assert snapshot() == before


# ------------------------------------------------------------------ abort (§1.16)


def test_abort_aborts_unfinished_records_and_finishes(
    client: APIClient, management_client: APIClient
) -> None:
    (d1, t1), (d2, t2), (d3, _t3) = (
        factories.accepted_device(f"02:00:00:00:24:0{i}") for i in range(3)
    )
    factories.artifact("release-1", ["probe-device"])
    deployment_id = create_deployment(
        management_client,
        name="r",
        artifact_name="release-1",
        devices=[str(d.id) for d in (d1, d2, d3)],
    )
    poll(client, t1, "original")
    install(client, t1, deployment_id)
    poll(client, t2, "original")
    assert report(client, t2, deployment_id, "installing").status_code == 204

    response = management_client.put(
        f"{DEPLOYMENTS}/{deployment_id}/status", {"status": "aborted"}, format="json"
    )

    assert response.status_code == 204
    statuses = dict(DeviceDeployment.objects.values_list("device_id", "status"))
    assert statuses == {d1.id: "success", d2.id: "aborted", d3.id: "aborted"}
    deployment = Deployment.objects.get(pk=deployment_id)
    assert deployment.status == "finished"
    assert deployment.finished is not None
    # the installing device learns it from its next report
    assert report(client, t2, deployment_id, "installing").status_code == 409
    again = management_client.put(
        f"{DEPLOYMENTS}/{deployment_id}/status", {"status": "aborted"}, format="json"
    )
    assert again.status_code == 422
    bad = management_client.put(
        f"{DEPLOYMENTS}/{deployment_id}/status", {"status": "finished"}, format="json"
    )
    assert bad.status_code == 400


# ------------------------------------------------------------------ management reads


def test_management_lists(client: APIClient, management_client: APIClient) -> None:
    (d1, t1), (d2, _t2) = (
        factories.accepted_device(f"02:00:00:00:25:0{i}") for i in range(2)
    )
    factories.artifact("release-1", ["probe-device"])
    old = create_deployment(
        management_client, name="old", artifact_name="release-1", devices=[str(d1.id)]
    )
    new = create_deployment(
        management_client,
        name="new",
        artifact_name="release-1",
        devices=[str(d1.id), str(d2.id)],
    )
    poll(client, t1, "original")
    install(client, t1, old)

    listing = management_client.get(DEPLOYMENTS, {"per_page": 1})
    assert listing.status_code == 200
    assert listing["X-Total-Count"] == "2"
    assert [d["id"] for d in listing.json()] == [new]
    assert [
        d["id"]
        for d in management_client.get(DEPLOYMENTS, {"status": "finished"}).json()
    ] == [old]
    assert [
        d["id"] for d in management_client.get(DEPLOYMENTS, {"search": "ol"}).json()
    ] == [old]

    devices = management_client.get(
        f"{DEPLOYMENTS}/{new}/devices/list", {"status": "pending"}
    )
    assert devices["X-Total-Count"] == "2"
    assert {d["id"] for d in devices.json()} == {str(d1.id), str(d2.id)}
    assert sorted(
        management_client.get(f"{DEPLOYMENTS}/{new}/device_list").json()
    ) == sorted([str(d1.id), str(d2.id)])
    history = management_client.get(f"{DEPLOYMENTS}/devices/{d1.id}").json()
    assert [item["deployment"]["id"] for item in history] == [new, old]
    assert history[1]["device"]["status"] == "success"
    assert (
        management_client.get(
            f"{DEPLOYMENTS}/00000000-0000-4000-8000-000000000000"
        ).status_code
        == 404
    )


def test_full_inventory_does_not_block_the_update(
    client: APIClient, management_client: APIClient
) -> None:
    device, token = factories.accepted_device("02:00:00:00:26:01")
    device.inventory = {f"attribute_{i}": "x" for i in range(100)}
    device.save(update_fields=["inventory"])
    factories.artifact("release-1", ["probe-device"])
    deployment_id = create_deployment(
        management_client, name="r", artifact_name="release-1", devices=[str(device.id)]
    )

    response = poll(
        client, token, "original", **{"rootfs-image.probe-sandbox.version": "original"}
    )

    assert response.status_code == 200
    assert response.json()["id"] == deployment_id
    device.refresh_from_db()
    assert len(device.inventory) == 100
