"""Hooks other apps register so devices_app can tell them about device events without importing them.

devices_app sits below deployments_app in the module graph: it may not import it. An app that
must act when a device is decommissioned registers a function here from its AppConfig.ready().
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

DecommissionHook = Callable[..., object]

_decommission_hooks: list[DecommissionHook] = []


def register_decommission_hook(hook: DecommissionHook) -> None:
    """Call ``hook(device_id=...)`` inside the decommissioning transaction (registering twice is a no-op)."""
    if hook not in _decommission_hooks:
        _decommission_hooks.append(hook)


def run_decommission_hooks(*, device_id: uuid.UUID) -> None:
    """Tell every registered app that the device is being decommissioned (same transaction)."""
    for hook in _decommission_hooks:
        hook(device_id=device_id)
