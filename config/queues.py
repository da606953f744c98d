"""Celery queues by kind of work, which task goes where, and how each queue's workers run.

Pure Python (no Django, no Celery): the settings read ``TASK_ROUTES``, the settings declare
``ALL_QUEUES`` so that a worker started without ``-Q`` (``make run``'s) consumes every one, and the
compose file and Kubernetes manifests run one worker per ``WorkerGroup`` with its figures.

Why separate queues: a million-device expansion or a burst of filter re-evaluations must not
delay finalisation and phase promotion (``rollout``) or webhook deliveries (``notify``).
Every task is idempotent, so every queue is ``acks_late`` (the global setting): a worker
killed mid-task has its message redelivered, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

EXPANSION = "expansion"
MEMBERSHIPS = "memberships"
ROLLOUT = "rollout"
NOTIFY = "notify"
DEFAULT = "default"

# Order matters only for a worker consuming several queues: kombu's Redis transport rotates
# the queues it polls, so none starves, and the latency-sensitive ones come first.
ALL_QUEUES: tuple[str, ...] = (ROLLOUT, NOTIFY, MEMBERSHIPS, EXPANSION, DEFAULT)

# Task names stay as they are (in-flight messages carry them); only their queue is chosen here.
TASK_ROUTES: dict[str, dict[str, str]] = {
    "deployments_app.tasks.expand_deployment_task": {"queue": EXPANSION},
    "deployments_app.tasks.finalise_deployment_task": {"queue": ROLLOUT},
    "deployments_app.tasks.advance_phased_rollouts_task": {"queue": ROLLOUT},
    "deployments_app.tasks.sweep_deployments_task": {"queue": ROLLOUT},
    "devices_app.tasks.evaluate_device_filter_task": {"queue": MEMBERSHIPS},
    "devices_app.tasks.recheck_device_memberships_task": {"queue": MEMBERSHIPS},
    "devices_app.tasks.reevaluate_device_filters_task": {"queue": MEMBERSHIPS},
    "devices_app.tasks.purge_expired_device_tokens_task": {"queue": DEFAULT},
    "deployments_app.tasks.sweep_upload_leftovers_task": {"queue": DEFAULT},
    "config.accounts.tasks.purge_expired_access_tokens_task": {"queue": DEFAULT},
}


@dataclass(frozen=True)
class WorkerGroup:
    """One deployable worker: the queues it consumes and how many tasks it runs and reserves."""

    name: str
    queues: tuple[str, ...]
    concurrency: int
    # Tasks reserved per process beyond the running one. 1 for long tasks (a reserved task
    # waits behind a long one while an idle worker could run it); more for short tasks,
    # where a broker round trip per task would dominate.
    prefetch_multiplier: int


WORKER_GROUPS: tuple[WorkerGroup, ...] = (
    # Long, database-bound batches (5 000 rows a commit): few at once, none hoarded. Scale
    # out by replicas, each one adding PostgreSQL write load.
    WorkerGroup("expansion", (EXPANSION,), concurrency=2, prefetch_multiplier=1),
    # Set-based re-evaluations, seconds each on big fleets, retried on lock trouble.
    WorkerGroup("memberships", (MEMBERSHIPS,), concurrency=2, prefetch_multiplier=1),
    # Many short tasks (one finalisation check per finished device deployment): more
    # processes and a small reserve keep bursts moving.
    WorkerGroup("rollout", (ROLLOUT,), concurrency=4, prefetch_multiplier=4),
    # Outbound HTTP (webhooks, not yet written): waiting on the network, not on CPU.
    WorkerGroup("notify", (NOTIFY,), concurrency=8, prefetch_multiplier=2),
    WorkerGroup("default", (DEFAULT,), concurrency=1, prefetch_multiplier=1),
)


def worker_queues_argument(queues: tuple[str, ...] = ALL_QUEUES) -> str:
    """The value of ``celery worker -Q`` for these queues."""
    return ",".join(queues)
