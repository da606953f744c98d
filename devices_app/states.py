"""Status vocabularies of devices and auth sets, and their legal transitions (pure Python)."""

from __future__ import annotations

from django.db import models


class AuthSetStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    PREAUTHORIZED = "preauthorized", "Preauthorized"


AUTH_SET_TRANSITIONS: dict[str, frozenset[str]] = {
    AuthSetStatus.PENDING: frozenset({AuthSetStatus.ACCEPTED, AuthSetStatus.REJECTED}),
    AuthSetStatus.ACCEPTED: frozenset({AuthSetStatus.REJECTED, AuthSetStatus.PENDING}),
    AuthSetStatus.REJECTED: frozenset({AuthSetStatus.ACCEPTED, AuthSetStatus.PENDING}),
    # A preauthorized set becomes accepted when the device first authenticates with it.
    AuthSetStatus.PREAUTHORIZED: frozenset(
        {AuthSetStatus.ACCEPTED, AuthSetStatus.REJECTED}
    ),
}


class DeviceStatus(models.TextChoices):
    NOAUTH = "noauth", "No auth set"
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    PREAUTHORIZED = "preauthorized", "Preauthorized"
    DECOMMISSIONED = "decommissioned", "Decommissioned"


def can_transition_auth_set(current: str, to: str) -> bool:
    return to in AUTH_SET_TRANSITIONS[current]


def device_status_from_auth_sets(statuses: set[str]) -> DeviceStatus:
    """Mender's rule: accepted wins, then preauthorized, then pending, then rejected."""
    for candidate in (
        AuthSetStatus.ACCEPTED,
        AuthSetStatus.PREAUTHORIZED,
        AuthSetStatus.PENDING,
        AuthSetStatus.REJECTED,
    ):
        if candidate in statuses:
            return DeviceStatus(candidate.value)
    return DeviceStatus.NOAUTH
