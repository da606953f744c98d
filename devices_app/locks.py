"""Row locks of the devices app: one helper per row kind, one lock mode each.

Device rows are locked FOR NO KEY UPDATE: it serialises every writer of the same device, and
lets rows that reference the device (records, memberships, tokens) be inserted meanwhile; a
FOR UPDATE lock would also block their foreign-key checks.
"""

from __future__ import annotations

from django.db.models import QuerySet

from devices_app.models import Device, DeviceFilter


def device_qs_for_update() -> QuerySet[Device]:
    """Devices, locked when evaluated (evaluate inside a transaction; lock many in pk order)."""
    return Device.objects.select_for_update(no_key=True)


def device_filter_qs_for_update() -> QuerySet[DeviceFilter]:
    """Saved filters, locked FOR UPDATE when evaluated."""
    return DeviceFilter.objects.select_for_update()
