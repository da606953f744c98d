"""The one timestamp format of the APIs: RFC 3339 in UTC with a ``Z``."""

from __future__ import annotations

import datetime as dt


def rfc3339(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with ``Z`` (microseconds kept when present)."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# Matches the SQL form of the same timestamp (see devices_app.filtering._text_expression).
RFC3339_FIXED_WIDTH = "%Y-%m-%dT%H:%M:%S.%fZ"


def rfc3339_fixed_width(moment: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds always present: fixed width, so string order is time order.

    Saved filters compare system timestamps as strings, in Python and in SQL alike.
    """
    return moment.astimezone(dt.UTC).strftime(RFC3339_FIXED_WIDTH)
