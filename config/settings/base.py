"""Settings shared by every environment; everything is driven by environment variables."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False):
    env.read_env(str(BASE_DIR / ".env"))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-dev-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "devices_app",
    "deployments_app",
]

MIDDLEWARE = [
    "config.api.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files from gunicorn (collectstatic puts them in STATIC_ROOT).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
# Mender clients POST to paths without a trailing slash; a redirect would drop the body.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db(
        "DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/flotilla"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# Off by default: the check costs a round trip on every request (a third of a device poll's);
# a connection that died meanwhile fails one request, is discarded and the device retries.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool(
    "DATABASE_CONN_HEALTH_CHECKS", default=False
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("DJANGO_STATIC_ROOT", default=str(BASE_DIR / ".flotilla" / "static"))
MEDIA_ROOT = env("FLOTILLA_MEDIA_ROOT", default=str(BASE_DIR / ".flotilla" / "media"))
# Absolute base of links handed to devices and operators (download links must be absolute).
# Empty: built from the request's host.
FLOTILLA_PUBLIC_URL = env("FLOTILLA_PUBLIC_URL", default="")

# Request bodies: the Mender client and mender-cli send chunked bodies (see config.chunked).
FLOTILLA_MAX_REQUEST_BODY = env.int("FLOTILLA_MAX_REQUEST_BODY", default=10 * 1024**3)
FLOTILLA_CHUNKED_SPOOL_IN_MEMORY = env.int(
    "FLOTILLA_CHUNKED_SPOOL_IN_MEMORY", default=1024 * 1024
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Tokens
FLOTILLA_DEVICE_TOKEN_TTL = timedelta(
    seconds=env.int("FLOTILLA_DEVICE_TOKEN_TTL", default=7 * 24 * 3600)
)
FLOTILLA_USER_TOKEN_TTL = timedelta(
    seconds=env.int("FLOTILLA_USER_TOKEN_TTL", default=7 * 24 * 3600)
)
FLOTILLA_JWT_ISSUER = env("FLOTILLA_JWT_ISSUER", default="Flotilla")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.api.authentication.UserTokenAuthentication"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["config.api.permissions.IsManagementUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.FlotillaAutoSchema",
    "UNAUTHENTICATED_USER": None,
}

# The OpenAPI document at /api/schema/ (config.api.schema); public, as Mender publishes its specs.
SPECTACULAR_SETTINGS = {
    "TITLE": "Flotilla API",
    "DESCRIPTION": (
        "Mender's device and management APIs (deviceauth, inventory, deployments, useradm) "
        "as Flotilla serves them, and Flotilla's own endpoints."
    ),
    "VERSION": "1",
    # Tags by service: /api/{management,devices}/vN/<service>/...
    "SCHEMA_PATH_PREFIX": r"/api/(management|devices)/v[0-9]+",
    "SCHEMA_PATH_PREFIX_TRIM": False,
    "APPEND_COMPONENTS": {
        "securitySchemes": {"BasicAuth": {"type": "http", "scheme": "basic"}}
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "deployments_app.api.schema.add_artifact_download_operation",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}

# Celery
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Redeliver if a worker dies mid-task (tasks are idempotent), including on SIGKILL/OOM.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # don't hoard tasks on one worker
# Must exceed the longest task and countdown, or Redis redelivers tasks that are still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # How often workers look for tasks a dead worker left unacknowledged (seconds x calls).
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
    # A request publishing a task must not stall while the broker is down: fail fast, the
    # periodic sweeps redo the work (workers reconnect by their own, unbounded, policy).
    "max_retries": env.int("CELERY_PUBLISH_CONNECT_RETRIES", default=0),
}
CELERY_TASK_TIME_LIMIT = 10 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 9 * 60
# Results live in PostgreSQL rows, not the result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "advance-phased-rollouts": {
        "task": "deployments_app.tasks.advance_phased_rollouts_task",
        "schedule": env.float("FLOTILLA_PHASE_INTERVAL", default=10.0),
        "options": {"expires": 9},
    },
    "sweep-deployments": {
        "task": "deployments_app.tasks.sweep_deployments_task",
        "schedule": env.float("FLOTILLA_SWEEP_INTERVAL", default=30.0),
        "options": {"expires": 25},
    },
    "purge-expired-device-tokens": {
        "task": "devices_app.tasks.purge_expired_device_tokens_task",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # Repairs saved-filter membership drift; bounded batches, runs never overlap (cache lock).
    "reevaluate-device-filters": {
        "task": "devices_app.tasks.reevaluate_device_filters_task",
        "schedule": 600.0,
        "options": {"expires": 540},
    },
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
    }
}

# Deployment engine
FLOTILLA_EXPANSION_BATCH_SIZE = env.int("FLOTILLA_EXPANSION_BATCH_SIZE", default=5000)
# The sweep re-dispatches expansions not done this long after creation (e.g. broker was down).
FLOTILLA_EXPANSION_GRACE_SECONDS = env.int(
    "FLOTILLA_EXPANSION_GRACE_SECONDS", default=30
)

# Artifacts: storage, size limit, download links.
# Local files under MEDIA_ROOT by default; an S3-compatible bucket (django-storages) when
# FLOTILLA_S3_BUCKET is set, and download links are then presigned bucket URLs.
FLOTILLA_S3_BUCKET = env("FLOTILLA_S3_BUCKET", default="")
if FLOTILLA_S3_BUCKET:
    _ARTIFACT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": FLOTILLA_S3_BUCKET,
            "endpoint_url": env("FLOTILLA_S3_ENDPOINT_URL", default=None),
            "region_name": env("FLOTILLA_S3_REGION", default=None),
            "access_key": env("FLOTILLA_S3_ACCESS_KEY", default=None),
            "secret_key": env("FLOTILLA_S3_SECRET_KEY", default=None),
            "location": env("FLOTILLA_S3_PREFIX", default=""),
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
            "addressing_style": env("FLOTILLA_S3_ADDRESSING_STYLE", default=None),
            "signature_version": "s3v4",
        },
    }
else:
    _ARTIFACT_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "artifacts": _ARTIFACT_STORAGE,
}
# Largest accepted artifact upload (the `size` field or the actual bytes); over it -> 413.
FLOTILLA_MAX_ARTIFACT_SIZE = env.int("FLOTILLA_MAX_ARTIFACT_SIZE", default=10 * 1024**3)
# Lifetime of artifact download links (devices and operators), in seconds.
FLOTILLA_DOWNLOAD_LINK_TTL = timedelta(
    seconds=env.int("FLOTILLA_DOWNLOAD_LINK_TTL", default=24 * 3600)
)
