"""The one place device services schedule Celery tasks (after commit; config.dispatch)."""

from __future__ import annotations

import importlib
import uuid
from types import ModuleType

from config.dispatch import dispatch_on_commit


def _tasks() -> ModuleType:
    # Tasks import the services that call this module; a static import would close the circle
    # services -> dispatch -> tasks -> services, so the tasks module is looked up on first use.
    return importlib.import_module("devices_app.tasks")


def evaluate_device_filter_on_commit(filter_id: uuid.UUID | str) -> None:
    """Make the saved filter's stored membership exact in a worker after commit."""
    dispatch_on_commit(_tasks().evaluate_device_filter_task, str(filter_id))


def recheck_device_memberships_on_commit(device_ids: list[str]) -> None:
    """Re-check one batch of devices against every saved filter in a worker after commit."""
    dispatch_on_commit(_tasks().recheck_device_memberships_task, device_ids)
