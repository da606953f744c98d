from config.errors import Conflict, InvalidInput, NotFound, Unauthorized


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
