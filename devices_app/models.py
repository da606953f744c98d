"""Devices, their authentication sets and the device tokens issued to them."""

from __future__ import annotations

import uuid

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q

from devices_app.states import AuthSetStatus, DeviceStatus

# Mender's static group names: letters, digits, "_" and "-" (1..1024 characters).
GROUP_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"  # length: max_length=1024


class Device(models.Model):
    """A device known by its identity (the attributes its identity script prints)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    identity_data = models.JSONField()
    identity_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=16, choices=DeviceStatus.choices, default=DeviceStatus.NOAUTH
    )
    created_ts = models.DateTimeField(auto_now_add=True)
    updated_ts = models.DateTimeField(auto_now=True)
    check_in_time = models.DateTimeField(null=True, blank=True)
    # Inventory scopes (see devices_app.filtering): JSONB objects {name: value}, GIN-indexed so
    # saved filters and searches run in PostgreSQL.
    inventory = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # Changes whenever the tags change; the management API hands it out as the tags ETag.
    tags_etag = models.UUIDField(null=True, blank=True, editable=False)
    # The one static group the device is in (the open GroupMembership row holds the same name);
    # NULL, not "", for "no group": "" is not a valid group name and the CHECK says so.
    group_name = models.CharField(max_length=1024, null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DeviceStatus.values), name="device_status_known"
            ),
            models.CheckConstraint(
                condition=Q(group_name__isnull=True)
                | Q(group_name__regex=GROUP_NAME_PATTERN),
                name="device_group_name_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_ts"], name="device_status_created"),
            models.Index(fields=["group_name"], name="device_group_name"),
            GinIndex(fields=["inventory"], name="device_inventory_gin"),
            GinIndex(fields=["tags"], name="device_tags_gin"),
            GinIndex(fields=["identity_data"], name="device_identity_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.identity_data}"

    @property
    def is_accepted(self) -> bool:
        return self.status == DeviceStatus.ACCEPTED


class AuthSet(models.Model):
    """One (identity, public key) pair a device has presented or an operator preauthorized."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="auth_sets"
    )
    identity_data = models.JSONField()
    pubkey = models.TextField()
    status = models.CharField(
        max_length=16, choices=AuthSetStatus.choices, default=AuthSetStatus.PENDING
    )
    ts = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "pubkey"], name="uniq_auth_set_device_pubkey"
            ),
            models.UniqueConstraint(
                fields=["device"],
                condition=Q(status=AuthSetStatus.ACCEPTED),
                name="uniq_accepted_auth_set_per_device",
            ),
            models.CheckConstraint(
                condition=Q(status__in=AuthSetStatus.values),
                name="auth_set_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"auth set {self.id} ({self.status})"


class DeviceToken(models.Model):
    """A device JWT that was issued; deleting the row revokes the token at once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="tokens")
    auth_set = models.ForeignKey(
        AuthSet, on_delete=models.CASCADE, related_name="tokens"
    )
    created_ts = models.DateTimeField(auto_now_add=True)
    expires_ts = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"token {self.id} of {self.device_id}"


class GroupMembership(models.Model):
    """One stay of a device in a static group, from ``added_ts`` until ``removed_ts`` (open while null).

    The history lets a deployment resolve a group as it was at its creation instant.
    """

    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="group_memberships"
    )
    group_name = models.CharField(max_length=1024)
    added_ts = models.DateTimeField()
    removed_ts = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A device is in at most one static group at a time.
            models.UniqueConstraint(
                fields=["device"],
                condition=Q(removed_ts__isnull=True),
                name="uniq_open_group_membership_per_device",
            ),
            models.CheckConstraint(
                condition=Q(removed_ts__isnull=True) | Q(removed_ts__gte=F("added_ts")),
                name="group_membership_removed_after_added",
            ),
            models.CheckConstraint(
                condition=Q(group_name__regex=GROUP_NAME_PATTERN),
                name="group_membership_name_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["group_name", "added_ts"], name="group_membership_name_added"
            ),
            # Walks a group's members in device-id order: the deployment expansion's batches.
            models.Index(
                fields=["group_name", "device"], name="group_membership_name_device"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.device_id} in {self.group_name}"

    @property
    def is_open(self) -> bool:
        return self.removed_ts is None


class DeviceFilter(models.Model):
    """A saved inventory filter (Mender "dynamic group"): AND-ed terms over the attribute scopes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=1024, unique=True)
    terms = models.JSONField()
    created_ts = models.DateTimeField(auto_now_add=True)
    updated_ts = models.DateTimeField(auto_now=True)
    # Last complete set-based evaluation of the membership (null: never evaluated yet).
    evaluated_ts = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(name__regex=r"\S"),
                name="device_filter_name_not_blank",
            ),
        ]
        indexes = [
            models.Index(
                F("evaluated_ts").asc(nulls_first=True), name="device_filter_evaluated"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class FilterMembership(models.Model):
    """A device currently matching a saved filter (maintained by workers; accepted devices only).

    No database foreign keys on purpose: the RI triggers would check and row-lock every device
    and the filter once per inserted row, which dominates evaluating a filter over 100k devices.
    Django cascades deletions, and every evaluation deletes rows whose device no longer qualifies.
    """

    pk = models.CompositePrimaryKey("device_filter", "device")
    device_filter = models.ForeignKey(
        DeviceFilter,
        on_delete=models.CASCADE,
        related_name="memberships",
        db_constraint=False,
        db_index=False,
    )
    device = models.ForeignKey(
        Device,
        on_delete=models.CASCADE,
        related_name="filter_memberships",
        db_constraint=False,
    )
    since_ts = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.device_id} matches {self.device_filter_id}"
