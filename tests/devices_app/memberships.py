"""Reads of stored saved-filter memberships that only tests need."""

from __future__ import annotations

import uuid

from devices_app.models import FilterMembership


def device_matches_filter(*, device_id: uuid.UUID, filter_id: uuid.UUID) -> bool:
    """Does the accepted device currently match the saved filter (its stored membership)?"""
    return FilterMembership.objects.filter(
        device_filter_id=filter_id, device_id=device_id
    ).exists()
