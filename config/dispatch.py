"""Send a Celery task once the current transaction commits, surviving a broker outage."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def dispatch_on_commit(task: Any, *args: Any) -> None:
    """Send ``task(*args)`` once the current transaction commits.

    If the broker is unreachable the committed change stands and the request succeeds: every
    dispatched task has a periodic sweep that finds the work still undone.
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
