"""Row locks of the deployments app: one helper per row kind, one lock mode each (FOR UPDATE)."""

from __future__ import annotations

from django.db.models import QuerySet

from deployments_app.models import (
    Artifact,
    Deployment,
    DeploymentPhase,
    DeviceDeployment,
    Release,
)
from deployments_app.querysets import DeploymentQuerySet, DeviceDeploymentQuerySet


def deployment_qs_for_update() -> DeploymentQuerySet[Deployment]:
    """Deployments, locked when evaluated."""
    return Deployment.objects.select_for_update()


def device_deployment_qs_for_update() -> DeviceDeploymentQuerySet[DeviceDeployment]:
    """Device deployment records, locked when evaluated."""
    return DeviceDeployment.objects.select_for_update()


def phase_qs_for_update() -> QuerySet[DeploymentPhase]:
    """Deployment phases, locked when evaluated (many: in number order)."""
    return DeploymentPhase.objects.select_for_update()


def artifact_qs_for_update() -> QuerySet[Artifact]:
    """Artifacts, locked when evaluated (many: in pk order)."""
    return Artifact.objects.select_for_update()


def release_qs_for_update() -> QuerySet[Release]:
    """Releases, locked when evaluated."""
    return Release.objects.select_for_update()
