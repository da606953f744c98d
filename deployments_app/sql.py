"""Hand-written SQL on device deployment records that more than one service runs.

Each statement lives in one named function with a direct test (tests/deployments_app/test_sql.py);
statuses come from states.py as parameters, never as literals.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from deployments_app.models import DeviceDeployment
from deployments_app.states import DeviceDeploymentStatus


@dataclass(frozen=True)
class PendingInsert:
    """What one insert_pending_records() call did."""

    selected: int  # rows the source produced
    inserted: int  # records created (the others already had a live record)
    last_device_id: (
        uuid.UUID | None
    )  # greatest device id of the source (a keyset cursor)


def insert_pending_records(*, source_sql: str, params: Sequence[Any]) -> PendingInsert:
    """Create one pending record per row of ``source_sql``, set-based, skipping live duplicates.

    ``source_sql`` selects the columns ``deployment_id``, ``device_id`` and ``created`` (the
    record's ordering time: its deployment's creation). It is evaluated once, in a CTE, so it
    may hold a LIMIT. Used by the expansion, the late materialisation of unexpanded targets at
    poll time, and the reset of a device's deployment history.
    """
    table = DeviceDeployment._meta.db_table
    sql = f"""
        WITH source AS ({source_sql}), inserted AS (
            INSERT INTO {table}
                (id, deployment_id, device_id, status, substate, created, attempts, has_log)
            SELECT gen_random_uuid(), s.deployment_id, s.device_id, %s, '', s.created, 0, false
            FROM source s
            ON CONFLICT (deployment_id, device_id) WHERE deleted IS NULL DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM source), (SELECT count(*) FROM inserted),
               (SELECT device_id FROM source ORDER BY device_id DESC LIMIT 1)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, DeviceDeploymentStatus.PENDING.value])
        selected, inserted, last_device_id = cursor.fetchone()
    return PendingInsert(
        selected=selected, inserted=inserted, last_device_id=last_device_id
    )
