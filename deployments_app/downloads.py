"""Self-authorising artifact download links: HMAC-signed, expiring URLs (spec §3.1.6).

The Mender client sends no Authorization header when it downloads, so the link itself carries
the authorisation: ``x-men-expire`` (RFC 3339, UTC) and ``x-men-signature``, the unpadded
base64url HMAC-SHA256 of ``"GET\\n<path>\\nx-men-expire=<expire>\\ntenant_id=\\n"`` under a key
derived from SECRET_KEY. Only the path and the expiry are signed, so the link works behind any
host name or scheme that routes to this server.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.utils import timezone
from django.utils.crypto import salted_hmac

from config.timestamps import rfc3339
from deployments_app.exceptions import InvalidDownloadLink

EXPIRE_PARAM = "x-men-expire"
SIGNATURE_PARAM = "x-men-signature"
# Must match the route in deployments_app.api.artifact_urls (device_urlpatterns, mounted at /api/devices/).
DOWNLOAD_PATH_TEMPLATE = "/api/devices/v1/deployments/download/artifacts/{artifact_id}"
_KEY_SALT = "flotilla.deployments_app.downloads"


def artifact_download_path(*, artifact_id: Any) -> str:
    """Path (without host) of the download view for one artifact."""
    return DOWNLOAD_PATH_TEMPLATE.format(artifact_id=artifact_id)


def format_expire(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, second precision (what the link carries)."""
    return rfc3339(moment.replace(microsecond=0))


def _signature(*, path: str, expire: str) -> str:
    message = f"GET\n{path}\n{EXPIRE_PARAM}={expire}\ntenant_id=\n"
    digest = salted_hmac(_KEY_SALT, message, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_signed_url(*, base_url: str, path: str, expire: dt.datetime) -> str:
    """Absolute URL ``<base_url><path>?x-men-expire=…&x-men-signature=…``."""
    expire_text = format_expire(expire)
    query = urlencode(
        {
            EXPIRE_PARAM: expire_text,
            SIGNATURE_PARAM: _signature(path=path, expire=expire_text),
        }
    )
    return f"{base_url.rstrip('/')}{path}?{query}"


def verify_signed_request(
    *, path: str, params: Mapping[str, str], now: dt.datetime | None = None
) -> dt.datetime:
    """Check a download request's signature and expiry; return the expiry or raise InvalidDownloadLink."""
    expire_text = params.get(EXPIRE_PARAM)
    signature = params.get(SIGNATURE_PARAM)
    if not expire_text or not signature:
        raise InvalidDownloadLink("missing download link signature")
    expected = _signature(path=path, expire=expire_text)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise InvalidDownloadLink("invalid download link signature")
    try:
        expire = dt.datetime.fromisoformat(expire_text)
    except ValueError:
        raise InvalidDownloadLink("invalid download link expiry") from None
    if expire.tzinfo is None:
        raise InvalidDownloadLink("invalid download link expiry")
    if (now or timezone.now()) >= expire:
        raise InvalidDownloadLink("download link expired")
    return expire
