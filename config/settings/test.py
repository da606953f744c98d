from .base import *  # noqa: F403
from .base import env

# Fixed, so that every process of a test run (pytest, live server, worker) signs alike.
SECRET_KEY = "flotilla-test-suite-key-not-a-secret"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": CACHES["ratelimit"],  # noqa: F405 - Redis, so server processes share limits
}
# The suite logs in and authenticates devices far more often than an attacker may: generous
# limits unless a test (or its server process) sets its own in the environment.
for _limit in (
    "AUTH_REQUESTS_PER_ADDRESS",
    "AUTH_REQUESTS_GLOBAL",
    "LOGIN_PER_ADDRESS",
    "LOGIN_GLOBAL",
    "LOGIN_FAILURES_PER_ACCOUNT",
):
    globals()[f"FLOTILLA_RATELIMIT_{_limit}"] = env(
        f"FLOTILLA_RATELIMIT_{_limit}", default="1000000/m"
    )
