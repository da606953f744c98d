"""Production: behind a TLS-terminating reverse proxy, configured by FLOTILLA_PUBLIC_URL.

The public URL (what devices and browsers use, e.g. ``https://updates.example.com``) gives the
allowed host, the trusted CSRF origin and, when it is ``https://``, the HTTPS-only settings
(redirect, HSTS, secure cookies) that make ``manage.py check --deploy`` clean. The proxy must
set ``X-Forwarded-Proto`` (and overwrite any value a client sent).
"""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import checked_secret_key, env

# No defaults for secrets: a missing one fails loudly, and so does a publicly known one.
SECRET_KEY = checked_secret_key(env("DJANGO_SECRET_KEY"))
DEBUG = False

FLOTILLA_PUBLIC_URL = env("FLOTILLA_PUBLIC_URL").rstrip("/")
_public = urlsplit(FLOTILLA_PUBLIC_URL)
if _public.scheme not in ("http", "https") or not _public.hostname:
    raise ImproperlyConfigured(
        "FLOTILLA_PUBLIC_URL must be an absolute http(s) URL, e.g. https://updates.example.com"
    )
_public_origin = f"{_public.scheme}://{_public.netloc}"

# The public host name; DJANGO_ALLOWED_HOSTS adds others (e.g. a second name devices use).
# Loopback stays allowed for the container health probes.
ALLOWED_HOSTS = [
    _public.hostname,
    *env.list("DJANGO_ALLOWED_HOSTS", default=[]),
    "localhost",
    "127.0.0.1",
]
CSRF_TRUSTED_ORIGINS = [
    _public_origin,
    *env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[]),
]

FLOTILLA_HTTPS = env.bool("FLOTILLA_HTTPS", default=_public.scheme == "https")
if FLOTILLA_HTTPS:
    # The proxy terminates TLS and says so in this header; gunicorn itself speaks plain HTTP.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Probes talk to gunicorn directly (plain HTTP on the container network).
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    # Subdomains of the Flotilla host itself; the parent domain is not affected.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True
    )
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
