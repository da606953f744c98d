"""The one timestamp format of the APIs: RFC 3339 in UTC with a ``Z``."""

from __future__ import annotations

import datetime as dt


def rfc3339(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with ``Z`` (microseconds kept when present)."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
