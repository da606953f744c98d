"""Deployments, their phases, and the per-device records that track each device's progress."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from deployments_app.querysets import DeploymentQuerySet, DeviceDeploymentQuerySet
from deployments_app.states import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    DeploymentStatus,
    DeviceDeploymentStatus,
)

__all__ = [
    "Deployment",
    "DeploymentPhase",
    "DeviceDeployment",
    "DeviceDeploymentLog",
    "TargetKind",
]

_ACTIVE = sorted(ACTIVE_STATUSES)
_FINAL = sorted(FINAL_STATUSES)


class TargetKind(models.TextChoices):
    DEVICES = "devices", "Device list"
    GROUP = "group", "Static group"
    ALL = "all", "All devices"
    DYNAMIC = "dynamic", "Dynamic filter"


class Deployment(models.Model):
    """Deliver a release (by artifact name) to a target set."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=4096)
    artifact_name = models.CharField(max_length=4096, db_index=True)
    # Drives the ordering guarantee: microsecond precision, ties broken by id.
    created = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16,
        choices=DeploymentStatus.choices,
        default=DeploymentStatus.PENDING,
    )
    target_kind = models.CharField(max_length=16, choices=TargetKind.choices)
    group_name = models.CharField(max_length=1024, blank=True, default="")
    groups = ArrayField(models.CharField(max_length=1024), default=list, blank=True)
    device_list = ArrayField(models.UUIDField(), default=list, blank=True)
    all_devices = models.BooleanField(default=False)
    force_installation = models.BooleanField(default=False)
    max_devices = models.PositiveIntegerField(default=0)
    device_count = models.PositiveIntegerField(default=0)
    artifacts = ArrayField(models.UUIDField(), default=list, blank=True)
    retries = models.PositiveIntegerField(default=0)
    # Lets the poll skip the phase lookup for the (common) unphased deployment.
    is_phased = models.BooleanField(default=False)
    filter_id = models.UUIDField(null=True, blank=True)
    filter_snapshot = models.JSONField(null=True, blank=True)
    initial_device_count = models.PositiveIntegerField(null=True, blank=True)
    constructor_checksum = models.CharField(max_length=64)
    # Expansion of static targets into device deployments: resumable keyset cursor.
    expansion_cursor = models.UUIDField(null=True, blank=True)
    expanded_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    objects = DeploymentQuerySet["Deployment"].as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["constructor_checksum"],
                condition=~Q(status=DeploymentStatus.FINISHED),
                name="uniq_active_deployment_constructor",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeploymentStatus.values),
                name="deployment_status_known",
            ),
        ]
        indexes = [
            models.Index(fields=["created", "id"], name="deployment_created"),
            models.Index(
                fields=["created", "id"],
                condition=~Q(status=DeploymentStatus.FINISHED),
                name="deployment_active_created",
            ),
            models.Index(
                fields=["created"],
                condition=Q(expanded_at__isnull=True),
                name="deployment_unexpanded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.artifact_name})"

    @property
    def is_finished(self) -> bool:
        return self.status == DeploymentStatus.FINISHED

    @property
    def is_dynamic(self) -> bool:
        return self.target_kind == TargetKind.DYNAMIC


class DeploymentPhase(models.Model):
    """One batch of a phased rollout; ``capacity`` None means unbounded (last dynamic phase)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="phases"
    )
    number = models.PositiveSmallIntegerField()
    batch_size = models.PositiveSmallIntegerField()
    start_ts = models.DateTimeField()
    capacity = models.PositiveIntegerField(null=True, blank=True)
    device_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "number"], name="uniq_phase_number"
            ),
            models.CheckConstraint(
                condition=Q(capacity__isnull=True)
                | Q(device_count__lte=models.F("capacity")),
                name="phase_within_capacity",
            ),
        ]
        ordering = ["number"]

    def __str__(self) -> str:
        return f"phase {self.number} of {self.deployment_id}"


class DeviceDeployment(models.Model):
    """One device's part in one deployment."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="device_deployments"
    )
    device = models.ForeignKey(
        "devices_app.Device",
        on_delete=models.CASCADE,
        related_name="device_deployments",
    )
    status = models.CharField(
        max_length=24,
        choices=DeviceDeploymentStatus.choices,
        default=DeviceDeploymentStatus.PENDING,
    )
    substate = models.CharField(max_length=200, blank=True, default="")
    # Equal to the deployment's creation time: the ordering rule compares these.
    created = models.DateTimeField()
    # When the device first received this deployment (a static target row exists before that).
    admitted_at = models.DateTimeField(null=True, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    deleted = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    phase = models.ForeignKey(
        DeploymentPhase, null=True, blank=True, on_delete=models.SET_NULL
    )
    artifact = models.ForeignKey(
        "deployments_app.Artifact", null=True, blank=True, on_delete=models.SET_NULL
    )
    artifact_size = models.BigIntegerField(null=True, blank=True)
    image = models.JSONField(null=True, blank=True)
    request = models.JSONField(null=True, blank=True)
    has_log = models.BooleanField(default=False)

    objects = DeviceDeploymentQuerySet["DeviceDeployment"].as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "device"],
                condition=Q(deleted__isnull=True),
                name="uniq_device_deployment",
            ),
            models.UniqueConstraint(
                fields=["deployment", "device"],
                condition=Q(status__in=_ACTIVE),
                name="uniq_active_device_deployment",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeviceDeploymentStatus.values),
                name="device_deployment_status_known",
            ),
        ]
        indexes = [
            models.Index(
                fields=["device", "created"],
                condition=Q(status__in=_ACTIVE, deleted__isnull=True),
                name="dd_device_active",
            ),
            models.Index(
                fields=["device", "created"],
                condition=Q(status__in=_FINAL, deleted__isnull=True),
                name="dd_device_final",
            ),
            models.Index(fields=["deployment", "status"], name="dd_deployment_status"),
        ]

    def __str__(self) -> str:
        return f"{self.device_id} in {self.deployment_id}: {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class DeviceDeploymentLog(models.Model):
    """The latest log a device uploaded for a device deployment (each upload replaces it)."""

    device_deployment = models.OneToOneField(
        DeviceDeployment, on_delete=models.CASCADE, primary_key=True, related_name="log"
    )
    messages = models.JSONField()
    uploaded_ts = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"log of {self.device_deployment_id}"
