from .base import *  # noqa: F403
from .base import env

# Fixed, so that every process of a test run (pytest, live server, worker) signs alike.
SECRET_KEY = "flotilla-test-suite-key-not-a-secret"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
