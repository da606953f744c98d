"""A developer's machine (`make run`): DEBUG off unless DJANGO_DEBUG=1, a secret key required."""

from .base import *  # noqa: F403
from .base import SECRET_KEY, checked_secret_key

SECRET_KEY = checked_secret_key(SECRET_KEY)
