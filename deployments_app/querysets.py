"""The vocabulary of deployment reads: chainable filters instead of repeated conditions.

Generic in the model so this module needs no import of models.py (which imports it); the models
bind the parameter: ``DeploymentQuerySet["Deployment"].as_manager()``.
"""

from __future__ import annotations

from typing import Self, TypeVar

from django.db import models

from deployments_app.states import ACTIVE_STATUSES, FINAL_STATUSES, DeploymentStatus

_M = TypeVar("_M", bound=models.Model)


class DeploymentQuerySet(models.QuerySet[_M]):
    def unfinished(self) -> Self:
        """Deployments that are not finished (scheduled, pending or in progress)."""
        return self.exclude(status=DeploymentStatus.FINISHED)

    def unexpanded(self) -> Self:
        """Deployments whose static targets have no records yet (dynamic ones never are)."""
        return self.filter(expanded_at__isnull=True)


class DeviceDeploymentQuerySet(models.QuerySet[_M]):
    def live(self) -> Self:
        """Records not reset away by a history reset (``deleted`` unset)."""
        return self.filter(deleted__isnull=True)

    def active(self) -> Self:
        """Records in an active status (pending or under way on the device)."""
        return self.filter(status__in=ACTIVE_STATUSES)

    def final(self) -> Self:
        """Records in a final status."""
        return self.filter(status__in=FINAL_STATUSES)
