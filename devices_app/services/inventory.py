"""Device inventory (device-reported ``inventory`` scope) and operator tags (``tags`` scope)."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from devices_app.exceptions import DeviceNotFound, InvalidInventory, TagsVersionMismatch
from devices_app.locks import device_qs_for_update
from devices_app.models import Device
from devices_app.services.groups import move_devices_locked
from devices_app.services.memberships import (
    lock_memberships,
    recheck_device_memberships,
    recheck_locked_device,
)
from devices_app.states import DeviceStatus

MAX_ATTRIBUTES_PER_SCOPE = 100
MAX_NAME_LENGTH = 1024
MAX_STRING_LENGTH = 4096
MAX_LIST_LENGTH = 1024
MAX_VALUE_BYTES = 16 * 1024


def _check_string(value: str, where: str) -> None:
    if len(value) > MAX_STRING_LENGTH:
        raise InvalidInventory(f"{where}: longer than {MAX_STRING_LENGTH} characters")
    if "\x00" in value:
        raise InvalidInventory(f"{where}: contains a NUL character")


def _check_number(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInventory(f"{where}: numbers must be finite")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_attribute_value(
    value: Any, where: str, *, strings_only: bool = False
) -> None:
    """A string, a number, or a list of all strings / all numbers, within the size limits."""
    allowed = "a string" if strings_only else "a string, a number or a list of them"
    if isinstance(value, str):
        _check_string(value, where)
    elif _is_number(value) and not strings_only:
        _check_number(value, where)
    elif isinstance(value, list) and not strings_only:
        if len(value) > MAX_LIST_LENGTH:
            raise InvalidInventory(f"{where}: more than {MAX_LIST_LENGTH} elements")
        if all(isinstance(item, str) for item in value):
            for item in value:
                _check_string(item, where)
        elif all(_is_number(item) for item in value):
            for item in value:
                _check_number(item, where)
        else:
            raise InvalidInventory(
                f"{where}: a list must hold only strings or only numbers"
            )
    else:
        raise InvalidInventory(f"{where}: value must be {allowed}")
    if len(json.dumps(value)) > MAX_VALUE_BYTES:
        raise InvalidInventory(f"{where}: value larger than {MAX_VALUE_BYTES} bytes")


def validate_attributes(
    attributes: Mapping[str, Any], *, strings_only: bool = False
) -> dict[str, Any]:
    """Check names and values of ``{name: value}``; return a plain dict copy."""
    if not isinstance(attributes, Mapping):
        raise InvalidInventory("attributes must be an object")
    if len(attributes) > MAX_ATTRIBUTES_PER_SCOPE:
        raise InvalidInventory(
            f"too many attributes: at most {MAX_ATTRIBUTES_PER_SCOPE} per scope"
        )
    for name, value in attributes.items():
        if (
            not isinstance(name, str)
            or not 1 <= len(name) <= MAX_NAME_LENGTH
            or "\x00" in name
        ):
            raise InvalidInventory(
                f"attribute names must be 1..{MAX_NAME_LENGTH} characters"
            )
        validate_attribute_value(
            value, f"attribute {name!r}", strings_only=strings_only
        )
    return dict(attributes)


def parse_attribute_list(
    raw: Any, *, scope: str, strings_only: bool = False
) -> dict[str, Any]:
    """``[{"name", "value", "description"?, "scope"?}, …]`` (the wire shape) → ``{name: value}``."""
    if not isinstance(raw, list):
        raise InvalidInventory("expected a list of attributes")
    if not raw:
        raise InvalidInventory("no attributes provided")
    if len(raw) > MAX_ATTRIBUTES_PER_SCOPE:
        raise InvalidInventory(
            f"too many attributes: at most {MAX_ATTRIBUTES_PER_SCOPE} per scope"
        )
    attributes: dict[str, Any] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidInventory(f"attribute {index}: must be an object")
        name = item.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise InvalidInventory(
                f"attribute {index}: name must be 1..{MAX_NAME_LENGTH} characters"
            )
        if "value" not in item:
            raise InvalidInventory(f"attribute {name!r}: value is required")
        if item.get("scope", scope) != scope:
            raise InvalidInventory(
                f"attribute {name!r}: only the {scope!r} scope can be written here"
            )
        description = item.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > MAX_STRING_LENGTH
        ):
            raise InvalidInventory(f"attribute {name!r}: invalid description")
        if name in attributes:
            raise InvalidInventory(f"attribute {name!r}: given more than once")
        attributes[name] = item["value"]
    return validate_attributes(attributes, strings_only=strings_only)


def _next_attributes(
    current: dict[str, Any], attributes: dict[str, Any], *, replace: bool
) -> dict[str, Any]:
    result = dict(attributes) if replace else {**current, **attributes}
    if len(result) > MAX_ATTRIBUTES_PER_SCOPE:
        raise InvalidInventory(
            f"too many attributes: at most {MAX_ATTRIBUTES_PER_SCOPE} per scope"
        )
    return result


def _write_inventory(
    device_id: uuid.UUID, attributes: Mapping[str, Any], *, replace: bool
) -> bool:
    attributes = validate_attributes(attributes)
    current = (
        Device.objects.filter(pk=device_id).values_list("inventory", flat=True).first()
    )
    if current is None:
        raise DeviceNotFound("device not found")
    # The client re-sends its whole inventory every interval: the unchanged case reads only.
    if _next_attributes(current, attributes, replace=replace) == current:
        return False
    with transaction.atomic():
        lock_memberships(
            exclusive=False
        )  # before the row lock, see services.memberships
        device = device_qs_for_update().get(pk=device_id)
        inventory = _next_attributes(device.inventory, attributes, replace=replace)
        if inventory == device.inventory:
            return False
        now = timezone.now()
        Device.objects.filter(pk=device.pk).update(inventory=inventory, updated_ts=now)
        device.inventory, device.updated_ts = inventory, now
        # Synchronous: the membership is current before the device's next deployment poll.
        recheck_locked_device(device)
    return True


def replace_device_inventory(
    *, device_id: uuid.UUID, attributes: Mapping[str, Any]
) -> bool:
    """Replace the device-reported ``inventory`` scope (PUT); True if anything changed.

    An identical inventory costs one read and no write.
    """
    return _write_inventory(device_id, attributes, replace=True)


def merge_device_inventory(
    *, device_id: uuid.UUID, attributes: Mapping[str, Any]
) -> bool:
    """Upsert ``inventory``-scope attributes (PATCH); True if anything changed.

    No write when nothing changes. When something does, the device's saved-filter memberships
    are re-checked in the same transaction.
    """
    return _write_inventory(device_id, attributes, replace=False)


def _check_if_match(device: Device, if_match: str | None) -> None:
    if if_match is None:
        return
    wanted = {tag.strip().strip('"') for tag in if_match.split(",")}
    if "*" in wanted:
        return
    if device.tags_etag is None or str(device.tags_etag) not in wanted:
        raise TagsVersionMismatch("the tags have been changed (ETag does not match)")


def _write_tags(
    device_id: uuid.UUID,
    tags: Mapping[str, Any],
    *,
    replace: bool,
    if_match: str | None,
) -> bool:
    tags = validate_attributes(tags, strings_only=True)
    with transaction.atomic():
        device = (
            device_qs_for_update()
            .exclude(status=DeviceStatus.DECOMMISSIONED)
            .filter(pk=device_id)
            .first()
        )
        if device is None:
            raise DeviceNotFound("device not found")
        _check_if_match(device, if_match)
        new_tags = _next_attributes(device.tags, tags, replace=replace)
        if new_tags == device.tags:
            return False
        Device.objects.filter(pk=device.pk).update(
            tags=new_tags, tags_etag=uuid.uuid4(), updated_ts=timezone.now()
        )
        recheck_device_memberships(device_ids=[device.pk])
    return True


def replace_device_tags(
    *, device_id: uuid.UUID, tags: Mapping[str, Any], if_match: str | None = None
) -> bool:
    """Replace a device's tags; ``if_match`` (an ETag) guards against lost updates."""
    return _write_tags(device_id, tags, replace=True, if_match=if_match)


def merge_device_tags(
    *, device_id: uuid.UUID, tags: Mapping[str, Any], if_match: str | None = None
) -> bool:
    """Upsert some of a device's tags; ``if_match`` (an ETag) guards against lost updates."""
    return _write_tags(device_id, tags, replace=False, if_match=if_match)


@transaction.atomic
def clear_device_inventory(*, device_id: uuid.UUID) -> None:
    """Forget a device's inventory, tags and static group (``DELETE /inventory/devices/{id}``)."""
    device = (
        device_qs_for_update()
        .exclude(status=DeviceStatus.DECOMMISSIONED)
        .filter(pk=device_id)
        .first()
    )
    if device is None:
        raise DeviceNotFound("device not found")
    now = timezone.now()
    Device.objects.filter(pk=device.pk).update(
        inventory={}, tags={}, tags_etag=None, updated_ts=now
    )
    if device.group_name is not None:
        move_devices_locked(device_ids=[device.pk], group_name=None, now=now)
    else:
        recheck_device_memberships(device_ids=[device.pk])
