"""Container health probes (docker-compose ``healthcheck``): exit 0 when healthy, 1 when not.

    python -m config.probes web                       # GET /readyz on FLOTILLA_BIND's port
    python -m config.probes beat SCHEDULE MAX_AGE     # beat's schedule file written recently

No Django import: a probe must be cheap and must not depend on the database itself. Workers are
probed with Celery's own ``celery -A config inspect ping -d celery@$HOSTNAME``.
"""

from __future__ import annotations

import glob
import os
import sys
import time
import urllib.error
import urllib.request


def is_web_ready(*, bind: str, timeout: float = 10.0) -> bool:
    """Whether the web process on ``bind`` (host:port) answers /readyz with 200."""
    port = bind.rsplit(":", 1)[-1]
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/readyz", timeout=timeout
        ) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def is_beat_alive(*, schedule: str, max_age: float, now: float | None = None) -> bool:
    """Whether beat wrote its schedule file (any dbm variant of it) in the last ``max_age`` s.

    Beat records each run in this file and flushes it at least every three minutes while it
    ticks, so a stale file means a hung or dead scheduler.
    """
    now = time.time() if now is None else now
    written = [
        os.path.getmtime(path) for path in glob.glob(f"{glob.escape(schedule)}*")
    ]
    return bool(written) and now - max(written) <= max_age


def main(argv: list[str]) -> int:
    match argv:
        case ["web"]:
            healthy = is_web_ready(
                bind=os.environ.get("FLOTILLA_BIND", "127.0.0.1:8080")
            )
        case ["beat", schedule, max_age]:
            healthy = is_beat_alive(schedule=schedule, max_age=float(max_age))
        case _:
            print(__doc__, file=sys.stderr)  # noqa: T201
            return 2
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
