"""Typed query parameters: malformed values are a 400, never an error deeper down."""

from __future__ import annotations

import uuid
from typing import Any

from config.errors import InvalidInput


def uuid_list(params: Any, name: str) -> list[uuid.UUID]:
    """Every value of a repeated ``name=<uuid>`` parameter (400 if one is not a UUID)."""
    try:
        return [uuid.UUID(value) for value in params.getlist(name)]
    except ValueError:
        raise InvalidInput(f"Can't parse param {name}: not a UUID") from None
