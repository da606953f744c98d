"""Errors of the devices app: device authentication, inventory, groups and saved filters."""

from config.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unauthorized,
)


class InvalidAuthRequest(InvalidInput):
    """The auth request body or key cannot be parsed."""


class SignatureInvalid(Unauthorized):
    """X-MEN-Signature does not verify against the presented key."""


class DeviceNotAccepted(Unauthorized):
    """The device's auth set is not (or no longer) accepted."""


class DeviceNotFound(NotFound):
    pass


class AuthSetNotFound(NotFound):
    pass


class InvalidAuthSetTransition(InvalidInput):
    pass


class DeviceAlreadyExists(Conflict):
    pass


class TokenNotFound(NotFound):
    pass


class DeviceFilterNameTaken(Conflict):
    pass


class InvalidGroupName(InvalidInput):
    pass


class DeviceNotGroupable(InvalidInput):
    """Only accepted devices can be put in a static group."""


class DeviceNotInGroup(NotFound):
    pass


class InvalidInventory(InvalidInput):
    """Attributes that are malformed, of a wrong type, or over a size limit."""


class TagsVersionMismatch(PreconditionFailed):
    """``If-Match`` names a tags version that is no longer current (HTTP 412)."""


class DeviceFilterNotFound(NotFound):
    pass


class GroupNotFound(NotFound):
    pass


class InvalidFilter(InvalidInput):
    """Filter terms that are malformed, use an unknown scope/operator, or carry oversize values."""


class UnsupportedKey(ValueError):
    """Not a PEM public key of a supported type (RSA, ECDSA, Ed25519)."""
