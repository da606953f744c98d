"""The vocabulary of deployment reads: chainable filters instead of repeated conditions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

from deployments_app.states import ACTIVE_STATUSES, FINAL_STATUSES, DeploymentStatus

if TYPE_CHECKING:
    # Named in the QuerySet generics below, as strings: models import this module.
    from deployments_app.models import Deployment, DeviceDeployment  # noqa: F401


class DeploymentQuerySet(models.QuerySet["Deployment"]):
    def unfinished(self) -> DeploymentQuerySet:
        """Deployments that are not finished (scheduled, pending or in progress)."""
        return self.exclude(status=DeploymentStatus.FINISHED)

    def unexpanded(self) -> DeploymentQuerySet:
        """Deployments whose static targets have no records yet (dynamic ones never are)."""
        return self.filter(expanded_at__isnull=True)


class DeviceDeploymentQuerySet(models.QuerySet["DeviceDeployment"]):
    def live(self) -> DeviceDeploymentQuerySet:
        """Records not reset away by a history reset (``deleted`` unset)."""
        return self.filter(deleted__isnull=True)

    def active(self) -> DeviceDeploymentQuerySet:
        """Records in an active status (pending or under way on the device)."""
        return self.filter(status__in=ACTIVE_STATUSES)

    def final(self) -> DeviceDeploymentQuerySet:
        """Records in a final status."""
        return self.filter(status__in=FINAL_STATUSES)
