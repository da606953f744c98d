"""Builders for test data that go through the real services wherever a service exists."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from devices_app.exceptions import DeviceNotAccepted
from devices_app.models import Device
from devices_app.services import devauth
from tests.device_keys import make_key, signed_auth_request

_KEY = make_key("p256")


def accepted_device(mac: str) -> tuple[Device, str]:
    """A device accepted through devauth, and a working device token for it."""
    body, signature = signed_auth_request(_KEY, {"mac": mac})
    with contextlib.suppress(DeviceNotAccepted):
        devauth.submit_auth_request(raw_body=body, signature=signature)
    device = Device.objects.get(identity_data={"mac": mac})
    auth_set = device.auth_sets.get()
    devauth.set_auth_set_status(
        device_id=device.id, auth_set_id=auth_set.id, to="accepted"
    )
    token = devauth.submit_auth_request(raw_body=body, signature=signature)
    device.refresh_from_db()
    return device, token


def artifact(
    name: str,
    device_types: list[str],
    *,
    size: int = 5120,
    depends: dict[str, Any] | None = None,
    provides: dict[str, str] | None = None,
) -> Any:
    """An Artifact row (no file needed for engine tests; downloads are tested with real uploads)."""
    from deployments_app.models import Artifact, Release

    release, _ = Release.objects.get_or_create(name=name)
    digest = hashlib.sha256(f"{name}{device_types}{depends}".encode()).hexdigest()[:12]
    return Artifact.objects.create(
        release=release,
        name=name,
        device_types_compatible=device_types,
        info_format="mender",
        info_version=3,
        depends={"device_type": device_types, **(depends or {})},
        provides={"artifact_name": name, **(provides or {})},
        updates=[
            {"type_info": {"type": "probe-sandbox"}, "files": [], "meta_data": None}
        ],
        size=size,
        file=f"artifacts/{name}-{digest}.mender",
    )


def bulk_accepted_devices(
    count: int, *, prefix: str = "bulk"
) -> list[tuple[Device, str]]:
    """Many accepted devices with tokens, created set-based (no key signing per device)."""
    import datetime as dt

    from django.conf import settings
    from django.utils import timezone

    from config.api.tokens import DEVICE_CLAIM, issue_token
    from devices_app.identity import canonical_identity
    from devices_app.models import AuthSet, DeviceToken

    devices = []
    for index in range(count):
        identity = {"mac": f"{prefix}-{index:06d}"}
        devices.append(
            Device(
                identity_data=identity,
                identity_hash=canonical_identity(identity)[1],
                status="accepted",
            )
        )
    Device.objects.bulk_create(devices)
    auth_sets = AuthSet.objects.bulk_create(
        AuthSet(
            device=device,
            identity_data=device.identity_data,
            pubkey=f"key-{device.id}",
            status="accepted",
        )
        for device in devices
    )
    expires = timezone.now() + dt.timedelta(days=1)
    tokens = DeviceToken.objects.bulk_create(
        DeviceToken(device=device, auth_set=auth_set, expires_ts=expires)
        for device, auth_set in zip(devices, auth_sets, strict=True)
    )
    return [
        (
            device,
            issue_token(
                jti=str(token.id),
                subject=str(device.id),
                ttl=settings.FLOTILLA_DEVICE_TOKEN_TTL,
                claims={DEVICE_CLAIM: True},
            ),
        )
        for device, token in zip(devices, tokens, strict=True)
    ]


def bulk_group(group_name: str, count: int, *, prefix: str = "grp") -> list[Any]:
    """``count`` accepted devices in a static group, inserted set-based; returns their ids."""
    from django.db import connection
    from django.utils import timezone

    from devices_app.models import GroupMembership

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Device._meta.db_table}
                (id, identity_data, identity_hash, status, created_ts, updated_ts, inventory, tags, group_name)
            SELECT gen_random_uuid(), jsonb_build_object('mac', %s || i), md5(%s || i) || md5(i::text),
                   'accepted', %s, %s, '{{}}'::jsonb, '{{}}'::jsonb, %s
            FROM generate_series(1, %s) AS i
            RETURNING id
            """,
            [f"{prefix}-", f"{prefix}-", now, now, group_name, count],
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""
            INSERT INTO {GroupMembership._meta.db_table} (device_id, group_name, added_ts)
            SELECT unnest(%s::uuid[]), %s, %s
            """,
            [[str(i) for i in ids], group_name, now],
        )
    return ids
