"""Errors of the accounts domain (the API maps their kind to HTTP: 422, 409, 404, 429)."""

from __future__ import annotations

from config.errors import Conflict, DomainError, NotFound, Unprocessable


class AccountError(DomainError):
    """Base of the accounts errors."""


class UserNotFound(NotFound, AccountError):
    pass


class DuplicateEmail(Unprocessable, AccountError):
    pass


class PasswordTooShort(Unprocessable, AccountError):
    pass


class CurrentPasswordMismatch(Unprocessable, AccountError):
    pass


class CannotModifyPassword(Unprocessable, AccountError):
    pass


class TooManyTokens(Unprocessable, AccountError):
    pass


class DuplicateTokenName(Conflict, AccountError):
    pass


class LoginThrottled(AccountError):
    """Too many login attempts (address, global) or failures (account); retry after a while."""

    kind = "throttled"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
