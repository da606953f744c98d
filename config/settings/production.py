from .base import *  # noqa: F403
from .base import checked_secret_key, env

# No defaults for secrets: a missing one fails loudly, and so does a publicly known one.
SECRET_KEY = checked_secret_key(env("DJANGO_SECRET_KEY"))
DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
