"""The queue layout: every task routed to a declared queue, every queue run by one worker group."""

from __future__ import annotations

from config import queues
from config.celery import app


def _project_task_names() -> set[str]:
    app.loader.import_default_modules()
    return {
        name
        for name in app.tasks
        if name.startswith(("deployments_app.", "devices_app.", "config."))
    }


def test_every_project_task_is_routed_to_a_declared_queue() -> None:
    names = _project_task_names()

    assert names == set(queues.TASK_ROUTES)
    assert {route["queue"] for route in queues.TASK_ROUTES.values()} <= set(
        queues.ALL_QUEUES
    )


def test_celery_routes_each_task_to_its_queue() -> None:
    for name, route in queues.TASK_ROUTES.items():
        assert app.amqp.router.route({}, name)["queue"].name == route["queue"]
    assert app.amqp.router.route({}, "some.unrouted_task")["queue"].name == "default"


def test_worker_groups_cover_every_queue_exactly_once() -> None:
    consumed = [queue for group in queues.WORKER_GROUPS for queue in group.queues]

    assert sorted(consumed) == sorted(queues.ALL_QUEUES)
    assert len({group.name for group in queues.WORKER_GROUPS}) == len(
        queues.WORKER_GROUPS
    )


def test_beat_schedule_entries_name_routed_tasks() -> None:
    from django.conf import settings

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert scheduled <= set(queues.TASK_ROUTES)


def test_all_queues_worker_argument_lists_every_queue() -> None:
    assert queues.worker_queues_argument().split(",") == list(queues.ALL_QUEUES)
