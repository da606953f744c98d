"""Materialised saved-filter membership: set-based evaluation, device re-checks, periodic repair.

``FilterMembership`` holds (filter, device) for every *accepted* device matching a saved filter.
Writers and what keeps them from overwriting each other with stale reads:

* set-based writers (a filter's evaluation, bulk device re-checks, filter deletion) hold the
  transaction-level advisory lock ``MEMBERSHIP_LOCK_KEY`` exclusively, so each of their statements
  reads a snapshot in which no device change is half-applied;
* the single-device path (a device's inventory changed) holds it shared, so many devices proceed in
  parallel; it writes the device row and re-checks that device in the same transaction.

Exclusive holders never wait for row locks, so a shared waiter that already holds a device row lock
cannot deadlock with them. Operator changes (tags, groups) and auth-status changes commit first and
then dispatch ``recheck_device_memberships_task``; the periodic re-evaluation repairs any drift
(e.g. a lost task).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from devices_app import dispatch
from devices_app.filtering import (
    Term,
    compile_terms,
    device_document,
    matches,
    parse_terms,
)
from devices_app.models import Device, DeviceFilter, FilterMembership
from devices_app.states import DeviceStatus

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key guarding FilterMembership writes ("flotilla-membership" folded to int64).
MEMBERSHIP_LOCK_KEY = 0x666C6F74696C6C61
DEFAULT_EVALUATION_BATCH = 250_000
DEFAULT_WORK_MEM = "64MB"
RECHECK_CHUNK = 1000
FILTERS_PER_STATEMENT = 50
REPAIR_LOCK = "devices_app:reevaluate-device-filters"

DEVICE_TABLE = Device._meta.db_table
MEMBERSHIP_TABLE = FilterMembership._meta.db_table


@dataclass(frozen=True)
class MembershipChange:
    inserted: int = 0
    deleted: int = 0

    def __add__(self, other: MembershipChange) -> MembershipChange:
        return MembershipChange(
            self.inserted + other.inserted, self.deleted + other.deleted
        )


def lock_memberships(*, exclusive: bool) -> None:
    """Take the membership advisory lock for the rest of the current transaction."""
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [MEMBERSHIP_LOCK_KEY])


def _set_work_mem() -> None:
    # A batch hashes up to one batch of ids (the full join): keep that in memory, not on disk.
    work_mem = getattr(settings, "FLOTILLA_MEMBERSHIP_WORK_MEM", DEFAULT_WORK_MEM)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])


def _sync_statement(
    filters: Sequence[tuple[Any, Sequence[Term]]],
    device_scope: tuple[str, list[Any]],
    membership_scope: tuple[str, list[Any]],
    now: dt.datetime,
) -> tuple[str, list[Any]]:
    """One statement making the stored membership of ``filters`` within a device scope exact.

    The wanted set is computed set-based and only the difference is written, so re-evaluating an
    unchanged filter writes nothing. No ON CONFLICT clause (it costs ~25 % on a cold 100k-row
    insert): the caller holds the exclusive membership lock, so no other writer can add a row.
    """
    scope_sql, scope_params = device_scope
    selects, params = [], []
    for filter_id, terms in filters:
        condition, condition_params = compile_terms(terms, table="d")
        selects.append(
            f"SELECT %s::uuid AS filter_id, d.id AS device_id FROM {DEVICE_TABLE} d "
            f"WHERE d.status = %s AND {scope_sql} AND {condition}"
        )
        params += [
            str(filter_id),
            DeviceStatus.ACCEPTED.value,
            *scope_params,
            *condition_params,
        ]
    member_sql, member_params = membership_scope
    # One full join of "should be" against "is" yields both differences in a single pass.
    sql = f"""
        WITH diff AS MATERIALIZED (
            SELECT x.filter_id AS want_filter, x.device_id AS want_device,
                   m.device_filter_id AS have_filter, m.device_id AS have_device
            FROM ({" UNION ALL ".join(selects)}) x
            FULL JOIN (
                SELECT m.device_filter_id, m.device_id FROM {MEMBERSHIP_TABLE} m
                WHERE m.device_filter_id = ANY(%s::uuid[]) AND {member_sql}
            ) m ON m.device_filter_id = x.filter_id AND m.device_id = x.device_id
            WHERE x.device_id IS NULL OR m.device_id IS NULL
        ),
        inserted AS (
            INSERT INTO {MEMBERSHIP_TABLE} (device_filter_id, device_id, since_ts)
            SELECT want_filter, want_device, %s FROM diff WHERE have_device IS NULL
            RETURNING 1
        ),
        deleted AS (
            DELETE FROM {MEMBERSHIP_TABLE} m USING diff
            WHERE diff.want_device IS NULL
              AND m.device_filter_id = diff.have_filter AND m.device_id = diff.have_device
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM deleted)
    """
    params += [[str(filter_id) for filter_id, _ in filters], *member_params, now]
    return sql, params


def _execute_sync(
    filters: Sequence[tuple[Any, Sequence[Term]]],
    device_scope: tuple[str, list[Any]],
    membership_scope: tuple[str, list[Any]],
    now: dt.datetime,
) -> MembershipChange:
    sql, params = _sync_statement(filters, device_scope, membership_scope, now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted, deleted = cursor.fetchone()
    return MembershipChange(inserted, deleted)


def _range_scopes(
    lower: uuid.UUID | None, upper: uuid.UUID | None
) -> tuple[tuple[str, list[Any]], tuple[str, list[Any]]]:
    device_parts, member_parts, params = [], [], []
    if lower is not None:
        device_parts.append("d.id > %s")
        member_parts.append("m.device_id > %s")
        params.append(lower)
    if upper is not None:
        device_parts.append("d.id <= %s")
        member_parts.append("m.device_id <= %s")
        params.append(upper)
    device_sql = " AND ".join(device_parts) or "TRUE"
    member_sql = " AND ".join(member_parts) or "TRUE"
    return (device_sql, list(params)), (member_sql, list(params))


def _batch_upper_bound(lower: uuid.UUID | None, batch_size: int) -> uuid.UUID | None:
    """The id ending the next batch of ``batch_size`` devices after ``lower``; None for the last batch."""
    sql = f"SELECT id FROM {DEVICE_TABLE} WHERE id > %s ORDER BY id OFFSET %s LIMIT 1"
    with connection.cursor() as cursor:
        cursor.execute(sql, [lower or uuid.UUID(int=0), batch_size - 1])
        row = cursor.fetchone()
    return row[0] if row else None


def evaluate_device_filter(
    *, filter_id: uuid.UUID, batch_size: int | None = None
) -> MembershipChange:
    """Make one saved filter's stored membership exact, set-based, in device-id batches.

    Each batch is its own short transaction under the exclusive membership lock, so device
    inventory writes wait at most one batch. Idempotent: re-running writes only differences.
    """
    batch_size = batch_size or int(
        getattr(settings, "FLOTILLA_FILTER_EVALUATION_BATCH", DEFAULT_EVALUATION_BATCH)
    )
    started = timezone.now()
    total = MembershipChange()
    lower: uuid.UUID | None = None
    while True:
        with transaction.atomic():
            lock_memberships(exclusive=True)
            _set_work_mem()
            # Read under the lock: a deletion (which takes the lock too) either happened or waits.
            stored = DeviceFilter.objects.filter(pk=filter_id).values("terms").first()
            if stored is None:
                return total
            terms = parse_terms(stored["terms"])
            upper = _batch_upper_bound(lower, batch_size)
            device_scope, member_scope = _range_scopes(lower, upper)
            total += _execute_sync(
                [(filter_id, terms)], device_scope, member_scope, timezone.now()
            )
        if upper is None:
            break
        lower = upper
    DeviceFilter.objects.filter(pk=filter_id).update(evaluated_ts=started)
    return total


def sync_device_memberships(*, device_ids: Sequence[uuid.UUID]) -> MembershipChange:
    """Re-check these devices against every saved filter, set-based (one statement per 50 filters)."""
    ids = sorted({str(device_id) for device_id in device_ids})
    if not ids:
        return MembershipChange()
    total = MembershipChange()
    with transaction.atomic():
        lock_memberships(exclusive=True)
        filters = [
            (filter_id, parse_terms(terms))
            for filter_id, terms in DeviceFilter.objects.order_by("id").values_list(
                "id", "terms"
            )
        ]
        device_scope = ("d.id = ANY(%s::uuid[])", [ids])
        member_scope = ("m.device_id = ANY(%s::uuid[])", [ids])
        now = timezone.now()
        for start in range(0, len(filters), FILTERS_PER_STATEMENT):
            chunk = filters[start : start + FILTERS_PER_STATEMENT]
            total += _execute_sync(chunk, device_scope, member_scope, now)
        if not filters:
            # No filter left: whatever is stored for these devices is an orphan.
            deleted, _ = FilterMembership.objects.filter(device_id__in=ids).delete()
            total += MembershipChange(0, deleted)
    return total


def recheck_device_memberships(*, device_ids: Iterable[uuid.UUID | str]) -> None:
    """Re-check these devices' filter memberships in a worker once the current transaction commits.

    Call after changing anything filters can see (auth status, tags, group) for one or many
    devices; ids are sent in chunks of ``RECHECK_CHUNK``.
    """
    ids = [str(device_id) for device_id in device_ids]
    for start in range(0, len(ids), RECHECK_CHUNK):
        dispatch.recheck_device_memberships_on_commit(
            ids[start : start + RECHECK_CHUNK]
        )


def recheck_locked_device(device: Device) -> MembershipChange:
    """Re-check one device against every saved filter in Python, writing only differences.

    Precondition: inside a transaction holding the shared membership lock (taken before the
    device's row lock) and the device row as just written.
    """
    document = device_document(device)
    is_accepted = device.status == DeviceStatus.ACCEPTED
    wanted = set()
    if is_accepted:
        for filter_id, terms in DeviceFilter.objects.values_list("id", "terms"):
            if matches(parse_terms(terms), document):
                wanted.add(filter_id)
    current = set(
        FilterMembership.objects.filter(device_id=device.pk).values_list(
            "device_filter_id", flat=True
        )
    )
    missing, extra = wanted - current, current - wanted
    if missing:
        now = timezone.now()
        FilterMembership.objects.bulk_create(
            [
                FilterMembership(
                    device_filter_id=filter_id, device_id=device.pk, since_ts=now
                )
                for filter_id in sorted(missing)
            ],
            ignore_conflicts=True,
        )
    if extra:
        FilterMembership.objects.filter(
            device_id=device.pk, device_filter_id__in=extra
        ).delete()
    return MembershipChange(len(missing), len(extra))


@contextmanager
def repair_run_lock(*, timeout: int) -> Iterator[bool]:
    """Cross-process "only one repair run at a time" (cache ``add`` = Redis SET NX); yields acquired."""
    acquired = cache.add(REPAIR_LOCK, timezone.now().isoformat(), timeout)
    try:
        yield acquired
    finally:
        if acquired:
            cache.delete(REPAIR_LOCK)


def reevaluate_device_filters(*, evaluated_before: dt.datetime, limit: int) -> int:
    """Evaluate up to ``limit`` saved filters not evaluated since ``evaluated_before``; return how many."""
    stale = list(
        DeviceFilter.objects.filter(
            Q(evaluated_ts__isnull=True) | Q(evaluated_ts__lt=evaluated_before)
        )
        .order_by(F("evaluated_ts").asc(nulls_first=True), "id")
        .values_list("id", flat=True)[:limit]
    )
    for filter_id in stale:
        change = evaluate_device_filter(filter_id=filter_id)
        if change.inserted or change.deleted:
            logger.info("filter %s membership repaired: %s", filter_id, change)
    return len(stale)
