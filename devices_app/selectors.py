"""Read functions for devices and auth sets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import BooleanField, FloatField, Prefetch, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from devices_app.exceptions import DeviceFilterNotFound, DeviceNotFound, GroupNotFound
from devices_app.filtering import (
    Term,
    compile_terms,
    compile_text_search,
    parse_terms,
    sort_expression,
    text_keywords,
)
from devices_app.models import AuthSet, Device, DeviceFilter, FilterMembership
from devices_app.states import DeviceStatus


def get_device_for_token(*, device_id: str, token_id: str) -> Device | None:
    """The accepted device that holds this unexpired, unrevoked token (one indexed query)."""
    return (
        Device.objects.filter(
            pk=device_id,
            status=DeviceStatus.ACCEPTED,
            tokens__id=token_id,
            tokens__expires_ts__gt=timezone.now(),
        )
        .only("id", "status")
        .first()
    )


def list_devices(
    *, statuses: list[str] | None = None, ids: list[Any] | None = None
) -> QuerySet[Device]:
    """Devices (with their auth sets prefetched), oldest first; decommissioned ones are gone."""
    devices = inventory_devices().prefetch_related(
        Prefetch("auth_sets", queryset=AuthSet.objects.order_by("ts"))
    )
    if statuses:
        devices = devices.filter(status__in=statuses)
    if ids:
        devices = devices.filter(pk__in=ids)
    return devices.order_by("created_ts", "id")


def get_device(*, device_id: uuid.UUID) -> Device:
    device = list_devices().filter(pk=device_id).first()
    if device is None:
        raise DeviceNotFound("device not found")
    return device


def count_devices(*, status: str | None = None) -> int:
    """How many devices (with ``status``) the management API shows: decommissioned ones are gone."""
    devices = inventory_devices()
    if status:
        devices = devices.filter(status=status)
    return devices.count()


# --- inventory, groups and saved filters -------------------------------------------------------


def inventory_devices() -> QuerySet[Device]:
    """Devices as every management API sees them (decommissioned devices are gone from it)."""
    return Device.objects.exclude(status=DeviceStatus.DECOMMISSIONED)


def get_inventory_device(*, device_id: uuid.UUID) -> Device:
    device = inventory_devices().filter(pk=device_id).first()
    if device is None:
        raise DeviceNotFound("device not found")
    return device


def search_inventory_devices(
    *,
    terms: Sequence[Term] = (),
    sort: Sequence[tuple[str, str, bool]] = (),
    group: str | None = None,
    has_group: bool | None = None,
    text: str = "",
) -> QuerySet[Device]:
    """Devices matching AND-ed filter terms (compiled to SQL), ordered by ``sort`` then age.

    ``sort`` holds ``(scope, attribute, descending)`` triples. A ``text`` also keeps only devices
    holding one of its words and, as in Mender, orders by how well they match instead of ``sort``.
    """
    devices = inventory_devices()
    if terms:
        condition, params = compile_terms(terms, table=f'"{Device._meta.db_table}"')
        devices = devices.filter(RawSQL(condition, params, output_field=BooleanField()))
    if group is not None:
        devices = devices.filter(group_name=group)
    if has_group is not None:
        devices = devices.filter(group_name__isnull=not has_group)
    if text:
        return _text_matches(devices, text)
    ordering: list[Any] = []
    for scope, attribute, descending in sort:
        expression = RawSQL(
            *sort_expression(scope, attribute, table=f'"{Device._meta.db_table}"')
        )
        ordering.append(
            expression.desc(nulls_last=True)
            if descending
            else expression.asc(nulls_last=True)
        )
    return devices.order_by(*ordering, "created_ts", "id")


def _text_matches(devices: QuerySet[Device], text: str) -> QuerySet[Device]:
    keywords = text_keywords(text)
    if not keywords:
        return devices.none()  # nothing searchable in it: Mender finds nothing either
    condition, rank, params = compile_text_search(
        keywords, table=f'"{Device._meta.db_table}"'
    )
    return (
        devices.filter(RawSQL(condition, params, output_field=BooleanField()))
        .annotate(text_rank=RawSQL(rank, params, output_field=FloatField()))
        .order_by("-text_rank", "created_ts", "id")
    )


def get_device_group(*, device_id: uuid.UUID) -> str | None:
    """The static group of a device (None if ungrouped); 404 for unknown devices."""
    return get_inventory_device(device_id=device_id).group_name


def device_group_names(*, device_id: uuid.UUID) -> list[str]:
    """The device's static group as a list (empty or one name), for deployment records."""
    group = (
        Device.objects.filter(pk=device_id).values_list("group_name", flat=True).first()
    )
    return [group] if group else []


def list_groups(*, status: str | None = None) -> list[str]:
    """Names of the static groups (a group exists while it has members), sorted."""
    devices = inventory_devices().filter(group_name__isnull=False)
    if status:
        devices = devices.filter(status=status)
    names = devices.order_by("group_name").values_list("group_name", flat=True)
    return [name for name in names.distinct() if name is not None]


def list_group_device_ids(*, group_name: str) -> QuerySet[Device]:
    """Members of a static group, oldest first (404 if the group has none)."""
    members = inventory_devices().filter(group_name=group_name)
    if not members.exists():
        raise GroupNotFound("group not found")
    return members.order_by("created_ts", "id")


def list_device_filters() -> QuerySet[DeviceFilter]:
    return DeviceFilter.objects.order_by("created_ts", "id")


def get_device_filter(*, filter_id: uuid.UUID | str) -> DeviceFilter:
    """A saved filter (``id``, ``name``, ``terms`` as stored); DeviceFilterNotFound (404) otherwise.

    Takes a raw id too: a malformed one is simply not found.
    """
    try:
        device_filter = DeviceFilter.objects.filter(pk=filter_id).first()
    except (ValidationError, ValueError):
        device_filter = None
    if device_filter is None:
        raise DeviceFilterNotFound("filter not found")
    return device_filter


def filter_member_count(*, filter_id: uuid.UUID) -> int:
    """Accepted devices currently matching the saved filter (worker-maintained membership)."""
    return FilterMembership.objects.filter(device_filter_id=filter_id).count()


def count_devices_matching_terms(*, terms: Sequence[Term]) -> int:
    """Accepted devices matching the terms now, counted set-based from the inventory itself.

    Unlike ``filter_member_count`` it does not depend on the worker-maintained membership, so
    it is right even for a filter saved a moment ago.
    """
    condition, params = compile_terms(terms, table="d")
    sql = (
        f"SELECT count(*) FROM {Device._meta.db_table} d "
        f"WHERE d.status = %s AND {condition}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [DeviceStatus.ACCEPTED.value, *params])
        (count,) = cursor.fetchone() or (0,)
        return int(count)


def unevaluated_filters_matching_device(
    *, device_id: uuid.UUID, filter_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Of ``filter_ids``, the saved filters not evaluated since their last change that the device matches now.

    Their stored membership is not known yet (the evaluation worker has not finished), so the
    device is evaluated on the spot: one statement, the same compiler as the evaluation.
    """
    unevaluated = list(
        DeviceFilter.objects.filter(
            evaluated_ts__isnull=True, pk__in=filter_ids
        ).values_list("id", "terms")
    )
    if not unevaluated:
        return []
    selects: list[str] = []
    params: list[Any] = []
    for filter_id, terms in unevaluated:
        condition, condition_params = compile_terms(parse_terms(terms), table="d")
        selects.append(
            f"SELECT %s::uuid FROM {Device._meta.db_table} d "
            f"WHERE d.id = %s AND d.status = %s AND {condition}"
        )
        params += [
            str(filter_id),
            str(device_id),
            DeviceStatus.ACCEPTED.value,
            *condition_params,
        ]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects), params)
        return [row[0] for row in cursor.fetchall()]


def list_filter_members(*, filter_id: uuid.UUID) -> QuerySet[Device]:
    """The devices currently matching a saved filter, oldest first."""
    return Device.objects.filter(
        filter_memberships__device_filter_id=filter_id
    ).order_by("created_ts", "id")


def list_filter_attributes(*, limit: int = 1000) -> list[dict[str, Any]]:
    """``[{name, scope, count}]``: how many devices carry each attribute, most common first."""
    table = Device._meta.db_table
    sql = f"""
        SELECT name, scope, count FROM (
            SELECT k AS name, 'inventory' AS scope, count(*) AS count
              FROM {table} d, jsonb_object_keys(d.inventory) k WHERE d.status <> %s GROUP BY k
            UNION ALL
            SELECT k, 'identity', count(*)
              FROM {table} d, jsonb_object_keys(d.identity_data) k WHERE d.status <> %s GROUP BY k
            UNION ALL
            SELECT k, 'tags', count(*)
              FROM {table} d, jsonb_object_keys(d.tags) k WHERE d.status <> %s GROUP BY k
            UNION ALL
            SELECT 'group', 'system', count(*) FROM {table} d
              WHERE d.status <> %s AND d.group_name IS NOT NULL HAVING count(*) > 0
        ) attributes
        ORDER BY count DESC, scope, name LIMIT %s
    """
    decommissioned = DeviceStatus.DECOMMISSIONED.value
    with connection.cursor() as cursor:
        cursor.execute(sql, [decommissioned] * 4 + [limit])
        return [
            {"name": name, "scope": scope, "count": count}
            for name, scope, count in cursor.fetchall()
        ]
