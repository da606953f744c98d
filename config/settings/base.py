"""Settings shared by every environment; everything is driven by environment variables."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config import queues

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False):
    env.read_env(str(BASE_DIR / ".env"))

# Keys published with Flotilla (its former default): anyone can sign tokens with them.
PUBLIC_SECRET_KEYS = frozenset({"insecure-dev-key-change-me"})


def checked_secret_key(key: str) -> str:
    """``key`` unless it is empty or publicly known (then ImproperlyConfigured)."""
    if not key.strip() or key in PUBLIC_SECRET_KEYS:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is empty or a publicly known value: set it to a long random "
            "string (`make run` and `make manage` use one made per checkout in "
            ".flotilla/secret_key)"
        )
    return key


# Signs sessions, user and device JWTs and download links. No usable default: the local and
# production settings refuse an empty or publicly known key (`make run` makes one per checkout).
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
# Off unless asked for (DJANGO_DEBUG=1): tracebacks and settings would show on any error page.
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
    "config.accounts",
    "drf_spectacular",
    "devices_app",
    "deployments_app",
]

MIDDLEWARE = [
    "config.api.middleware.RequestIdMiddleware",
    "config.api.middleware.InputPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Serves the admin's static files from gunicorn (collectstatic puts them in STATIC_ROOT).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Content-Security-Policy (django-csp) on every response. The admin loads only its own static
# files; its one inline <style> (change_list.html without actions) is allowed by its hash.
_ADMIN_CHANGELIST_STYLE = "'sha256-blvLUW3UscWqsXGByNOqdBboM+ShWAuugp2mC/wbafU='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", _ADMIN_CHANGELIST_STYLE],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

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

# Input policy (config.input_policy): what any API request may carry; over it -> 400 (413 for size).
# Every request body except multipart uploads; 1 MiB is Mender deviceauth's request_size_limit.
FLOTILLA_MAX_JSON_BODY = env.int("FLOTILLA_MAX_JSON_BODY", default=1024 * 1024)
# The only paths that take a multipart body beyond that limit (artifact uploads: the management
# API and the admin's upload form), up to FLOTILLA_MAX_REQUEST_BODY.
FLOTILLA_MULTIPART_UPLOAD_PATHS = (
    "/api/management/v1/deployments/artifacts",
    "/admin/deployments_app/artifact/add/",
)
# Nesting of JSON documents (bodies, identity data, artifact headers); Mender's are 2-4 deep.
FLOTILLA_MAX_JSON_DEPTH = env.int("FLOTILLA_MAX_JSON_DEPTH", default=32)
# Each query parameter value and path segment (the longest column is 4096 characters).
FLOTILLA_MAX_QUERY_VALUE_LENGTH = env.int(
    "FLOTILLA_MAX_QUERY_VALUE_LENGTH", default=4096
)
# Device identities and public keys (auth requests and preauthorization): every management
# list of devices carries them, so they stay small (an RSA-8192 PEM is about 1.5 KB).
FLOTILLA_MAX_IDENTITY_DATA_SIZE = env.int(
    "FLOTILLA_MAX_IDENTITY_DATA_SIZE", default=4096
)
FLOTILLA_MAX_PUBKEY_SIZE = env.int("FLOTILLA_MAX_PUBKEY_SIZE", default=8192)
# New keys for one identity wait as pending auth sets; beyond this many a new key is refused.
FLOTILLA_MAX_PENDING_AUTH_SETS = env.int("FLOTILLA_MAX_PENDING_AUTH_SETS", default=10)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Upload file parts spool here (config.uploads): a dedicated directory, swept for what killed
# uploads leave, on the artifacts' filesystem, so storing an upload is a rename, not a copy.
FLOTILLA_UPLOAD_SPOOL_DIR = env(
    "FLOTILLA_UPLOAD_SPOOL_DIR", default=str(Path(MEDIA_ROOT) / "upload-spool")
)
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "config.uploads.SpoolDirectoryUploadHandler",
]
# The upload sweep removes spool files not written to for this long, and stored artifact files
# without a row older than the grace; both must exceed the longest upload (receive + verify).
FLOTILLA_UPLOAD_SPOOL_MAX_AGE = env.int(
    "FLOTILLA_UPLOAD_SPOOL_MAX_AGE", default=6 * 3600
)
FLOTILLA_ORPHAN_ARTIFACT_GRACE = env.int(
    "FLOTILLA_ORPHAN_ARTIFACT_GRACE", default=6 * 3600
)

# Tokens
FLOTILLA_DEVICE_TOKEN_TTL = timedelta(
    seconds=env.int("FLOTILLA_DEVICE_TOKEN_TTL", default=7 * 24 * 3600)
)
FLOTILLA_USER_TOKEN_TTL = timedelta(
    seconds=env.int("FLOTILLA_USER_TOKEN_TTL", default=7 * 24 * 3600)
)
FLOTILLA_JWT_ISSUER = env("FLOTILLA_JWT_ISSUER", default="Flotilla")
# Personal access tokens (Mender useradm): per-user cap and longest lifetime in seconds.
FLOTILLA_PAT_LIMIT_PER_USER = env.int("FLOTILLA_PAT_LIMIT_PER_USER", default=10)
FLOTILLA_PAT_MAX_EXPIRES_IN = env.int("FLOTILLA_PAT_MAX_EXPIRES_IN", default=31536000)

# Rate limits ("count/period": s, m, h, d, e.g. "10/15m"; empty turns one off), counted in Redis
# so every web process shares them (config.ratelimits). Over a limit: 429 with Retry-After.
FLOTILLA_RATELIMIT_AUTH_REQUESTS_PER_ADDRESS = env(
    "FLOTILLA_RATELIMIT_AUTH_REQUESTS_PER_ADDRESS", default="60/m"
)
FLOTILLA_RATELIMIT_AUTH_REQUESTS_GLOBAL = env(
    "FLOTILLA_RATELIMIT_AUTH_REQUESTS_GLOBAL", default="6000/m"
)
FLOTILLA_RATELIMIT_LOGIN_PER_ADDRESS = env(
    "FLOTILLA_RATELIMIT_LOGIN_PER_ADDRESS", default="30/5m"
)
FLOTILLA_RATELIMIT_LOGIN_GLOBAL = env(
    "FLOTILLA_RATELIMIT_LOGIN_GLOBAL", default="600/m"
)
# Wrong passwords per login name before it is locked until the window ends.
FLOTILLA_RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT = env(
    "FLOTILLA_RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT", default="10/15m"
)
# Behind a reverse proxy: the request header carrying the client address, as a META key
# (e.g. HTTP_X_FORWARDED_FOR; the last address in it is used). Empty: REMOTE_ADDR.
FLOTILLA_RATELIMIT_IP_HEADER = env("FLOTILLA_RATELIMIT_IP_HEADER", default="")
RATELIMIT_USE_CACHE = "ratelimit"
RATELIMIT_CACHE_PREFIX = env("FLOTILLA_RATELIMIT_CACHE_PREFIX", default="flotilla-rl:")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.api.authentication.UserTokenAuthentication"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["config.api.permissions.IsManagementUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.PolicyJSONParser"],
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

# Health and metrics (config.health, config.metrics)
# Budget of each /readyz check (PostgreSQL, Redis, Celery worker ping), in seconds.
FLOTILLA_READYZ_TIMEOUT = env.float("FLOTILLA_READYZ_TIMEOUT", default=2.0)
# /metrics answers a request bearing this token, or one from these networks (CIDR); by
# default neither, so /metrics is closed until the operator opens it.
FLOTILLA_METRICS_TOKEN = env("FLOTILLA_METRICS_TOKEN", default="")
FLOTILLA_METRICS_ALLOWED_NETWORKS = env.list(
    "FLOTILLA_METRICS_ALLOWED_NETWORKS", default=[]
)
FLOTILLA_METRICS_COLLECTORS = [
    "devices_app.metrics.device_metric_families",
    "deployments_app.metrics.deployment_metric_families",
]

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
# Queues by kind of work (config/queues.py). Every queue is declared, so a worker started
# without -Q (make run's) consumes them all; deployed workers pick theirs with -Q.
CELERY_TASK_DEFAULT_QUEUE = queues.DEFAULT
CELERY_TASK_QUEUES = [Queue(name) for name in queues.ALL_QUEUES]
CELERY_TASK_ROUTES = queues.TASK_ROUTES
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Safe with two beats running (docs/scaling.md "Running beat twice"): the decisions rest on
# database row locks and conditional updates, the cache locks only save duplicate work.
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
        "schedule": env.float("FLOTILLA_TOKEN_PURGE_INTERVAL", default=3600.0),
        "options": {"expires": 3000},
    },
    # Removes spool files and stored artifact files that killed uploads left (upload_sweep).
    "sweep-upload-leftovers": {
        "task": "deployments_app.tasks.sweep_upload_leftovers_task",
        "schedule": env.float("FLOTILLA_UPLOAD_SWEEP_INTERVAL", default=900.0),
        "options": {"expires": 600},
    },
    "purge-expired-access-tokens": {
        "task": "config.accounts.tasks.purge_expired_access_tokens_task",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # Repairs saved-filter membership drift; bounded batches, runs never overlap (cache lock).
    "reevaluate-device-filters": {
        "task": "devices_app.tasks.reevaluate_device_filters_task",
        "schedule": env.float("FLOTILLA_FILTER_REPAIR_INTERVAL", default=600.0),
        "options": {"expires": 540},
    },
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
    },
    # Rate-limit counters: always Redis (shared by every web process), even in tests.
    "ratelimit": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
    },
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
