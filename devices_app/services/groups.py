"""Static groups: a device is in at most one; every stay is kept as history (added/removed timestamps).

``Device.group_name`` is the current group (filters and listings use it); the open
``GroupMembership`` row of the device carries the same name. Only this module writes either, always
both in one transaction, so a deployment can resolve a group *as of* any instant from the history.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from config.errors import InvalidInput
from devices_app.exceptions import (
    DeviceNotFound,
    DeviceNotGroupable,
    DeviceNotInGroup,
    GroupNotFound,
    InvalidGroupName,
)
from devices_app.locks import device_qs_for_update
from devices_app.models import GROUP_NAME_PATTERN, Device, GroupMembership
from devices_app.services.memberships import recheck_device_memberships
from devices_app.states import DeviceStatus

MAX_BULK_DEVICES = 10_000
MAX_GROUP_NAME_LENGTH = 1024
_GROUP_NAME = re.compile(GROUP_NAME_PATTERN)

DEVICE_TABLE = Device._meta.db_table
GROUP_MEMBERSHIP_TABLE = GroupMembership._meta.db_table


@dataclass(frozen=True)
class GroupUpdate:
    matched_count: int
    updated_count: int


def validate_group_name(name: Any) -> str:
    """Mender's rule: 1..1024 of ``[A-Za-z0-9_-]``."""
    if (
        not isinstance(name, str)
        or len(name) > MAX_GROUP_NAME_LENGTH
        or not _GROUP_NAME.fullmatch(name)
    ):
        raise InvalidGroupName(
            "group name must be 1..1024 characters of A-Z, a-z, 0-9, '_' and '-'"
        )
    return name


def parse_device_ids(raw: Any) -> list[uuid.UUID]:
    """A JSON list of device id strings (bounded); 400 on anything else."""
    if not isinstance(raw, list):
        raise InvalidInput("expected a list of device ids")
    if len(raw) > MAX_BULK_DEVICES:
        raise InvalidInput(f"at most {MAX_BULK_DEVICES} device ids per request")
    ids = []
    for item in raw:
        try:
            ids.append(uuid.UUID(item))
        except (TypeError, ValueError, AttributeError):
            raise InvalidInput("ID is not a valid UUID") from None
    return list(dict.fromkeys(ids))


def move_devices_locked(
    *, device_ids: Sequence[uuid.UUID], group_name: str | None, now: dt.datetime
) -> None:
    """Close the devices' open stays and open new ones in ``group_name`` (None: ungroup).

    Precondition: the device rows are locked by the caller.
    """
    if not device_ids:
        return
    # GREATEST: a stay never ends before it began, even if the wall clock stepped back.
    GroupMembership.objects.filter(
        device_id__in=device_ids, removed_ts__isnull=True
    ).update(removed_ts=Greatest(Value(now), F("added_ts")))
    if group_name is not None:
        GroupMembership.objects.bulk_create(
            GroupMembership(device_id=device_id, group_name=group_name, added_ts=now)
            for device_id in device_ids
        )
    Device.objects.filter(pk__in=device_ids).update(
        group_name=group_name, updated_ts=now
    )
    recheck_device_memberships(device_ids=device_ids)


def _lock_device(device_id: uuid.UUID) -> Device:
    device = (
        device_qs_for_update()
        .exclude(status=DeviceStatus.DECOMMISSIONED)
        .filter(pk=device_id)
        .only("id", "status", "group_name")
        .first()
    )
    if device is None:
        raise DeviceNotFound("device not found")
    return device


@transaction.atomic
def set_device_group(*, device_id: uuid.UUID, group_name: str) -> bool:
    """Put an accepted device in a static group (moving it out of its current one); True if it moved."""
    group_name = validate_group_name(group_name)
    device = _lock_device(device_id)
    if device.status != DeviceStatus.ACCEPTED:
        raise DeviceNotGroupable("only accepted devices can be added to a group")
    if device.group_name == group_name:
        return False
    move_devices_locked(
        device_ids=[device.pk], group_name=group_name, now=timezone.now()
    )
    return True


@transaction.atomic
def clear_device_group(*, device_id: uuid.UUID, group_name: str) -> None:
    """Take a device out of the named group (404 if it is not in it)."""
    device = _lock_device(device_id)
    if device.group_name != group_name:
        raise DeviceNotInGroup(f"device is not in group {group_name!r}")
    move_devices_locked(device_ids=[device.pk], group_name=None, now=timezone.now())


def _lock_devices(
    device_ids: Sequence[uuid.UUID], **conditions: Any
) -> list[tuple[Any, str | None]]:
    # Fixed lock order (by id) so concurrent bulk changes cannot deadlock.
    return list(
        device_qs_for_update()
        .filter(pk__in=device_ids, **conditions)
        .order_by("pk")
        .values_list("pk", "group_name")
    )


@transaction.atomic
def add_devices_to_group(
    *, group_name: str, device_ids: Sequence[uuid.UUID]
) -> GroupUpdate:
    """Move many devices into a group; unknown and not-accepted devices are not matched."""
    group_name = validate_group_name(group_name)
    locked = _lock_devices(device_ids, status=DeviceStatus.ACCEPTED)
    changed = [pk for pk, current in locked if current != group_name]
    move_devices_locked(device_ids=changed, group_name=group_name, now=timezone.now())
    return GroupUpdate(matched_count=len(locked), updated_count=len(changed))


@transaction.atomic
def remove_devices_from_group(
    *, group_name: str, device_ids: Sequence[uuid.UUID]
) -> GroupUpdate:
    """Take the listed devices that are in ``group_name`` out of it."""
    group_name = validate_group_name(group_name)
    locked = _lock_devices(device_ids, group_name=group_name)
    move_devices_locked(
        device_ids=[pk for pk, _ in locked], group_name=None, now=timezone.now()
    )
    return GroupUpdate(matched_count=len(locked), updated_count=len(locked))


@transaction.atomic
def delete_group(*, group_name: str) -> int:
    """Ungroup every member (a group exists only while it has members); 404 if it has none."""
    group_name = validate_group_name(group_name)
    members = list(
        device_qs_for_update()
        .filter(group_name=group_name)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not members:
        raise GroupNotFound("group not found")
    move_devices_locked(device_ids=members, group_name=None, now=timezone.now())
    return len(members)


def accepted_devices_sql(*, after: uuid.UUID | None = None) -> tuple[str, list[Any]]:
    """SQL selecting ``device_id`` of every accepted device (for ``INSERT … SELECT``).

    ``after``: only devices with a greater id (keyset batches walk the primary key).
    """
    sql = f"SELECT ad.id AS device_id FROM {DEVICE_TABLE} ad WHERE ad.status = %s"
    params: list[Any] = [DeviceStatus.ACCEPTED.value]
    if after is not None:
        sql += " AND ad.id > %s"
        params.append(after)
    return sql, params


def group_members_as_of_sql(
    *, group_name: str, as_of: dt.datetime, after: uuid.UUID | None = None
) -> tuple[str, list[Any]]:
    """SQL selecting ``device_id`` of the accepted devices that were in the group at ``as_of``.

    Resolved from the membership history (a stay covers ``[added_ts, removed_ts)``), so devices
    added to or removed from the group after ``as_of`` do not change the answer. ``after``: only
    devices with a greater id, bounding both sides of the join so a keyset batch reads only
    its own rows.
    """
    # No DISTINCT: a device's stays never overlap, so at most one covers ``as_of``; without it
    # PostgreSQL can walk (group_name, device_id) in order and stop at a LIMIT.
    sql = (
        f"SELECT gm.device_id FROM {GROUP_MEMBERSHIP_TABLE} gm "
        f"JOIN {DEVICE_TABLE} gd ON gd.id = gm.device_id "
        "WHERE gm.group_name = %s AND gm.added_ts <= %s "
        "AND (gm.removed_ts IS NULL OR gm.removed_ts > %s) AND gd.status = %s"
    )
    params: list[Any] = [group_name, as_of, as_of, DeviceStatus.ACCEPTED.value]
    if after is not None:
        sql += " AND gm.device_id > %s AND gd.id > %s"
        params += [after, after]
    return sql, params
