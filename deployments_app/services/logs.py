"""Deployment logs uploaded by devices (each upload replaces the previous one)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from deployments_app.exceptions import (
    DeviceDeploymentNotFound,
    InvalidStatusReport,
)
from deployments_app.locks import device_deployment_qs_for_update
from deployments_app.models import DeviceDeployment, DeviceDeploymentLog

LOG_FIELDS = ("timestamp", "level", "message")


def save_device_deployment_log(
    *, device_id: uuid.UUID, deployment_id: uuid.UUID, messages: Any
) -> None:
    """Store the device's log for a deployment (spec §2.8)."""
    if not isinstance(messages, list) or not messages:
        raise InvalidStatusReport("messages must be a non-empty list")
    for message in messages:
        if not isinstance(message, dict) or not all(
            isinstance(message.get(field), str) and message.get(field)
            for field in LOG_FIELDS
        ):
            raise InvalidStatusReport(
                "every message needs non-empty timestamp, level and message"
            )
    with transaction.atomic():
        record = (
            device_deployment_qs_for_update()
            .live()
            .filter(device_id=device_id, deployment_id=deployment_id)
            .first()
        )
        if record is None:
            raise DeviceDeploymentNotFound("deployment not found for this device")
        DeviceDeploymentLog.objects.update_or_create(
            device_deployment=record,
            defaults={
                "messages": [
                    {field: m[field] for field in LOG_FIELDS} for m in messages
                ]
            },
        )
        if not record.has_log:
            DeviceDeployment.objects.filter(pk=record.pk).update(has_log=True)


def format_log(messages: list[dict[str, str]]) -> str:
    """One line per message: ``<timestamp> <level>: <message>``."""
    return "".join(f"{m['timestamp']} {m['level']}: {m['message']}\n" for m in messages)
