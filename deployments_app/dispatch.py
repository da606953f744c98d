"""The one place deployment services schedule Celery tasks: after commit, surviving a broker outage."""

from __future__ import annotations

import importlib
import logging
import uuid
from types import ModuleType
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def _tasks() -> ModuleType:
    # Tasks import the services that call this module; a static import would close the circle
    # services -> dispatch -> tasks -> services, so the tasks module is looked up on first use.
    return importlib.import_module("deployments_app.tasks")


def dispatch_on_commit(task: Any, *args: Any) -> None:
    """Send ``task(*args)`` once the current transaction commits.

    If the broker is unreachable the work is not lost: the periodic sweeps find
    deployments that still need expanding or finalising.
    """

    def send() -> None:
        try:
            # One immediate retry covers a stale pooled connection; a down broker fails fast.
            task.apply_async(
                args=args,
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0},
            )
        except OperationalError:
            logger.warning(
                "broker unavailable: %s%s left to the periodic sweep", task.name, args
            )

    transaction.on_commit(send)


def expand_deployment_on_commit(deployment_id: uuid.UUID | str) -> None:
    """Expand the deployment's static target set in a worker after commit."""
    dispatch_on_commit(_tasks().expand_deployment_task, str(deployment_id))


def finalise_deployment_on_commit(deployment_id: uuid.UUID | str) -> None:
    """Let a worker finish the deployment after commit if every record is final."""
    dispatch_on_commit(_tasks().finalise_deployment_task, str(deployment_id))
