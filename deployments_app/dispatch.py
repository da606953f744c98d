"""Dispatch Celery tasks after commit without letting a broker outage fail the request."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


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
