from .base import *  # noqa: F403
from .base import env

# No defaults for secrets: a missing one fails loudly.
SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
