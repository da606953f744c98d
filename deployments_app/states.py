"""Status vocabularies of deployments and device deployments, and their legal transitions."""

from __future__ import annotations

from django.db import models


class DeploymentStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"  # phased, first phase not started yet
    PENDING = "pending", "Pending"
    INPROGRESS = "inprogress", "In progress"
    FINISHED = "finished", "Finished"


DEPLOYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    DeploymentStatus.SCHEDULED: frozenset(
        {
            DeploymentStatus.PENDING,
            DeploymentStatus.INPROGRESS,
            DeploymentStatus.FINISHED,
        }
    ),
    DeploymentStatus.PENDING: frozenset(
        {DeploymentStatus.INPROGRESS, DeploymentStatus.FINISHED}
    ),
    DeploymentStatus.INPROGRESS: frozenset({DeploymentStatus.FINISHED}),
    DeploymentStatus.FINISHED: frozenset(),
}
ACTIVE_DEPLOYMENT_STATUSES = frozenset(
    {DeploymentStatus.SCHEDULED, DeploymentStatus.PENDING, DeploymentStatus.INPROGRESS}
)


class DeviceDeploymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DOWNLOADING = "downloading", "Downloading"
    INSTALLING = "installing", "Installing"
    REBOOTING = "rebooting", "Rebooting"
    PAUSE_BEFORE_INSTALLING = "pause_before_installing", "Paused before installing"
    PAUSE_BEFORE_COMMITTING = "pause_before_committing", "Paused before committing"
    PAUSE_BEFORE_REBOOTING = "pause_before_rebooting", "Paused before rebooting"
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    NOARTIFACT = "noartifact", "No artifact"
    ALREADY_INSTALLED = "already-installed", "Already installed"
    ABORTED = "aborted", "Aborted"
    DECOMMISSIONED = "decommissioned", "Decommissioned"


S = DeviceDeploymentStatus
ACTIVE_STATUSES: frozenset[str] = frozenset(
    {
        S.PENDING,
        S.DOWNLOADING,
        S.INSTALLING,
        S.REBOOTING,
        S.PAUSE_BEFORE_INSTALLING,
        S.PAUSE_BEFORE_COMMITTING,
        S.PAUSE_BEFORE_REBOOTING,
    }
)
FINAL_STATUSES: frozenset[str] = frozenset(
    {
        S.SUCCESS,
        S.FAILURE,
        S.NOARTIFACT,
        S.ALREADY_INSTALLED,
        S.ABORTED,
        S.DECOMMISSIONED,
    }
)
# What a device may report (spec §2.3); pending, aborted and decommissioned are server-side only.
DEVICE_REPORTABLE_STATUSES: frozenset[str] = frozenset(
    {
        S.DOWNLOADING,
        S.INSTALLING,
        S.REBOOTING,
        S.SUCCESS,
        S.FAILURE,
        S.ALREADY_INSTALLED,
        S.PAUSE_BEFORE_INSTALLING,
        S.PAUSE_BEFORE_COMMITTING,
        S.PAUSE_BEFORE_REBOOTING,
    }
)
# Only these counters leave a deployment "pending" (spec §1.9).
NOT_STARTED_STATUSES: frozenset[str] = frozenset({S.PENDING, S.DECOMMISSIONED})

# Any active status may follow any other (the client repeats and reorders reports); a final
# status is never left. Retries return a failed record to pending (handled by the service).
DEVICE_DEPLOYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    **{status: frozenset(S.values) - {status} for status in ACTIVE_STATUSES},
    **{status: frozenset() for status in FINAL_STATUSES},
}

STATUS_FILTER_ALIASES: dict[str, frozenset[str]] = {
    "pause": frozenset(
        {S.PAUSE_BEFORE_INSTALLING, S.PAUSE_BEFORE_COMMITTING, S.PAUSE_BEFORE_REBOOTING}
    ),
    "active": ACTIVE_STATUSES,
    "finished": FINAL_STATUSES,
}


def can_transition_device_deployment(current: str, to: str) -> bool:
    return to in DEVICE_DEPLOYMENT_TRANSITIONS[current]


def can_transition_deployment(current: str, to: str) -> bool:
    return to in DEPLOYMENT_TRANSITIONS[current]


def statuses_for_filter(value: str) -> frozenset[str] | None:
    """Statuses a list filter value stands for (an alias or one status); None if unknown."""
    if value in STATUS_FILTER_ALIASES:
        return STATUS_FILTER_ALIASES[value]
    if value in S.values:
        return frozenset({value})
    return None
