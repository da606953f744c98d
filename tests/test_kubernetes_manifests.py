"""deploy/kubernetes renders with ``kubectl kustomize`` and every object passes the API schema.

Without ``kubectl`` (or ``kubernetes-validate``) the tests skip, except in CI (``CI=true``) or
with ``FLOTILLA_REQUIRE_KUBECTL=1``, where a missing tool is a failure (as FLOTILLA_REQUIRE_E2E
does for the end-to-end tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from config.queues import WORKER_GROUPS

KUSTOMIZE_ROOT = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
# The oldest Kubernetes with every API used here still served (autoscaling/v2 HPAs).
KUBERNETES_VERSION = "1.30.0"


def _require(missing: str) -> NoReturn:
    message = f"Kubernetes manifest check needs {missing}"
    if os.environ.get("CI", "").lower() == "true" or (
        os.environ.get("FLOTILLA_REQUIRE_KUBECTL") == "1"
    ):
        pytest.fail(f"{message} (required in CI)", pytrace=False)
    pytest.skip(message)


def render(directory: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        _require("kubectl (Debian package kubernetes-client)")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE_ROOT / directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind_and_name(objects: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = workload["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.fixture(scope="module")
def validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        _require("kubernetes-validate (pip install -e '.[dev]')")
    return kubernetes_validate.validate


@pytest.mark.parametrize("directory", ["base", "overlays/production"])
def test_every_rendered_object_passes_the_kubernetes_schema(
    directory: str, validate: Any
) -> None:
    objects = render(directory)

    for obj in objects:
        validate(obj, KUBERNETES_VERSION, strict=True)
    assert len(objects) >= 10


def test_base_runs_web_each_worker_group_beat_and_the_migration_job() -> None:
    objects = by_kind_and_name(render("base"))

    expected = {
        ("Deployment", "flotilla-web"),
        ("Service", "flotilla-web"),
        ("Deployment", "flotilla-beat"),
        ("Job", "flotilla-migrate"),
        *(("Deployment", f"flotilla-worker-{group.name}") for group in WORKER_GROUPS),
    }
    assert expected <= set(objects)
    assert objects[("Deployment", "flotilla-beat")]["spec"]["replicas"] == 1
    for workload in objects.values():
        if workload["kind"] in {"Deployment", "Job"}:
            for container in containers(workload):
                requests = container["resources"]["requests"]
                assert {"cpu", "memory"} <= set(requests), container["name"]


def test_web_is_ready_on_readyz_and_alive_on_healthz() -> None:
    web = by_kind_and_name(render("base"))[("Deployment", "flotilla-web")]
    (container,) = web["spec"]["template"]["spec"]["containers"]

    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_each_worker_consumes_its_groups_queues_with_its_concurrency_and_prefetch() -> (
    None
):
    objects = by_kind_and_name(render("base"))

    for group in WORKER_GROUPS:
        workload = objects[("Deployment", f"flotilla-worker-{group.name}")]
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        command = container["command"]
        assert command[:4] == ["celery", "-A", "config", "worker"]
        assert option(command, "-Q").split(",") == list(group.queues)
        assert int(option(command, "--concurrency")) == group.concurrency
        assert (
            int(option(command, "--prefetch-multiplier")) == group.prefetch_multiplier
        )


def test_production_overlay_adds_autoscalers_and_pins_the_image() -> None:
    objects = by_kind_and_name(render("overlays/production"))

    targets = {
        name: hpa["spec"]["scaleTargetRef"]["name"]
        for (kind, name), hpa in objects.items()
        if kind == "HorizontalPodAutoscaler"
    }
    assert targets == {
        "flotilla-web": "flotilla-web",
        "flotilla-worker-expansion": "flotilla-worker-expansion",
    }
    namespaced = [o for (kind, _), o in objects.items() if kind != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"flotilla"}
    images = {
        container["image"]
        for workload in objects.values()
        if workload["kind"] in {"Deployment", "Job"}
        for container in containers(workload)
    }
    assert images == {"registry.example.com/flotilla:1.0.0"}
