"""What the reader extracts from an artifact (mender-compat.md §4.12)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PayloadFile:
    """One file shipped inside a payload's data archive."""

    name: str
    size: int
    checksum: str  # sha256, lowercase hex
    date: datetime  # tz-aware UTC, from the tar header's mtime


@dataclass(frozen=True)
class Payload:
    """One payload: type-info and meta-data (merged with any augment header) and its files."""

    type: str | None  # None only for an empty ("bootstrap") payload
    provides: dict[str, str] = field(default_factory=dict)
    depends: dict[str, str | list[str]] = field(default_factory=dict)
    clears: list[str] = field(default_factory=list)
    meta_data: dict[str, Any] | None = None
    files: list[PayloadFile] = field(default_factory=list)


@dataclass(frozen=True)
class ArtifactMeta:
    """Everything the server stores about an uploaded artifact."""

    name: str
    format: str
    version: int
    device_types_compatible: list[str]
    provides: dict[str, str]
    depends: dict[str, str | list[str]]
    clears: list[str]
    payloads: list[Payload]
    signed: bool
    size: int  # bytes of the outer file consumed, trailing bytes after the tar end included
