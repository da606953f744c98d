"""The one place deployment services schedule Celery tasks (after commit; config.dispatch)."""

from __future__ import annotations

import importlib
import uuid
from types import ModuleType

from config.dispatch import dispatch_on_commit


def _tasks() -> ModuleType:
    # Tasks import the services that call this module; a static import would close the circle
    # services -> dispatch -> tasks -> services, so the tasks module is looked up on first use.
    return importlib.import_module("deployments_app.tasks")


def expand_deployment_on_commit(deployment_id: uuid.UUID | str) -> None:
    """Expand the deployment's static target set in a worker after commit."""
    dispatch_on_commit(_tasks().expand_deployment_task, str(deployment_id))


def finalise_deployment_on_commit(deployment_id: uuid.UUID | str) -> None:
    """Let a worker finish the deployment after commit if every record is final."""
    dispatch_on_commit(_tasks().finalise_deployment_task, str(deployment_id))
