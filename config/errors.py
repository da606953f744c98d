"""Domain error base classes shared by both apps; the API layer maps their kind to HTTP."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule refused the operation; ``message`` is safe to show to the caller."""

    kind = "invalid"

    def __init__(self, message: str, *, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata


class InvalidInput(DomainError):
    kind = "invalid"


class NotFound(DomainError):
    kind = "not_found"


class Conflict(DomainError):
    kind = "conflict"


class Unprocessable(DomainError):
    kind = "unprocessable"


class Unauthorized(DomainError):
    kind = "unauthorized"


class Forbidden(DomainError):
    kind = "forbidden"


class TooLarge(DomainError):
    kind = "too_large"


class PreconditionFailed(DomainError):
    kind = "precondition_failed"
