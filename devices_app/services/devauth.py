"""Device authentication: auth requests, auth-set decisions, preauthorization, decommissioning, tokens."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.api.tokens import DEVICE_CLAIM, issue_token
from config.input_policy import UnacceptableInput, check_json_size, load_document
from devices_app.exceptions import (
    AuthSetNotFound,
    DeviceAlreadyExists,
    DeviceNotAccepted,
    DeviceNotFound,
    InvalidAuthRequest,
    InvalidAuthSetTransition,
    SignatureInvalid,
    UnsupportedKey,
)
from devices_app.hooks import run_decommission_hooks
from devices_app.identity import (
    canonical_identity,
    load_public_key,
    verify_signature,
)
from devices_app.locks import device_qs_for_update
from devices_app.models import AuthSet, Device, DeviceToken
from devices_app.services.memberships import recheck_device_memberships
from devices_app.states import (
    AuthSetStatus,
    DeviceStatus,
    can_transition_auth_set,
    device_status_from_auth_sets,
)


@dataclass(frozen=True)
class AuthRequest:
    identity_data: dict[str, Any]
    identity_hash: str
    pubkey: str


def parse_auth_request(raw_body: bytes) -> tuple[AuthRequest, Any]:
    """Decode the body of an auth request; return it with the parsed public key.

    Identity data and public key are capped (FLOTILLA_MAX_IDENTITY_DATA_SIZE,
    FLOTILLA_MAX_PUBKEY_SIZE): anyone can send this request, and every pending device it
    creates is listed to operators.
    """
    try:
        body = load_document(raw_body, what="auth request")
    except UnacceptableInput as exc:
        raise InvalidAuthRequest(f"failed to decode auth request: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidAuthRequest("invalid auth request: not an object")
    id_data, pubkey = body.get("id_data"), body.get("pubkey")
    if not isinstance(id_data, str) or not isinstance(pubkey, str):
        raise InvalidAuthRequest(
            "invalid auth request: id_data and pubkey must be strings"
        )
    _check_sizes(identity_json=id_data, pubkey=pubkey)
    try:
        identity = load_document(id_data, what="id_data")
    except UnacceptableInput as exc:
        raise InvalidAuthRequest(f"invalid auth request: {exc}") from None
    if not isinstance(identity, dict) or not identity:
        raise InvalidAuthRequest(
            "invalid auth request: id_data must be a non-empty JSON object"
        )
    try:
        key, canonical_pem = load_public_key(pubkey)
    except UnsupportedKey as exc:
        raise InvalidAuthRequest(f"invalid auth request: {exc}") from None
    _, identity_hash = canonical_identity(identity)
    return AuthRequest(
        identity_data=identity, identity_hash=identity_hash, pubkey=canonical_pem
    ), key


def _check_sizes(*, identity_json: str, pubkey: str) -> None:
    """Cap what anyone may have stored and listed to operators (400 over the limits)."""
    try:
        check_json_size(
            identity_json,
            limit=settings.FLOTILLA_MAX_IDENTITY_DATA_SIZE,
            what="identity data",
        )
        check_json_size(pubkey, limit=settings.FLOTILLA_MAX_PUBKEY_SIZE, what="pubkey")
    except UnacceptableInput as exc:
        raise InvalidAuthRequest(f"invalid auth request: {exc}") from None


def submit_auth_request(*, raw_body: bytes, signature: str) -> str:
    """Register the device/auth set of an auth request; return a device token if it is accepted.

    Raises DeviceNotAccepted (401) while the auth set is pending or rejected and for
    decommissioned devices; SignatureInvalid (401) when the signature does not verify.
    """
    request, key = parse_auth_request(raw_body)
    if not verify_signature(key, raw_body, signature):
        raise SignatureInvalid("signature verification failed")
    with transaction.atomic():
        device = _lock_or_create_device(request)
        if device.status == DeviceStatus.DECOMMISSIONED:
            raise DeviceNotAccepted("device decommissioned")
        if not device.auth_sets.filter(pubkey=request.pubkey).exists():
            _check_room_for_a_pending_key(device)
        auth_set, _ = AuthSet.objects.get_or_create(
            device=device,
            pubkey=request.pubkey,
            defaults={
                "identity_data": request.identity_data,
                "status": AuthSetStatus.PENDING,
            },
        )
        if auth_set.status == AuthSetStatus.PREAUTHORIZED:
            _write_auth_set_status(device, auth_set, AuthSetStatus.ACCEPTED)
        _refresh_device_status(device)
        token = (
            _issue_device_token(device, auth_set)
            if auth_set.status == AuthSetStatus.ACCEPTED
            else None
        )
    # Raised after commit: a new pending auth set is kept although the caller gets 401.
    if token is None:
        raise DeviceNotAccepted("unauthorized")
    return token


def _check_room_for_a_pending_key(device: Device) -> None:
    """At most FLOTILLA_MAX_PENDING_AUTH_SETS pending keys per device (call with the device locked).

    Anyone who knows an identity can add keys to it, and every device list shows them all.
    """
    limit = settings.FLOTILLA_MAX_PENDING_AUTH_SETS
    if device.auth_sets.filter(status=AuthSetStatus.PENDING).count() >= limit:
        raise InvalidAuthRequest(
            f"invalid auth request: the device already has {limit} pending keys"
        )


def _lock_or_create_device(request: AuthRequest) -> Device:
    device = device_qs_for_update().filter(identity_hash=request.identity_hash).first()
    if device is not None:
        return device
    try:
        with transaction.atomic():
            return Device.objects.create(
                identity_data=request.identity_data,
                identity_hash=request.identity_hash,
                status=DeviceStatus.PENDING,
            )
    except IntegrityError:
        # A concurrent first request of the same identity created it.
        return device_qs_for_update().get(identity_hash=request.identity_hash)


def _issue_device_token(device: Device, auth_set: AuthSet) -> str:
    expires = timezone.now() + settings.FLOTILLA_DEVICE_TOKEN_TTL
    token = DeviceToken.objects.create(
        device=device, auth_set=auth_set, expires_ts=expires
    )
    return issue_token(
        jti=str(token.id),
        subject=str(device.id),
        ttl=settings.FLOTILLA_DEVICE_TOKEN_TTL,
        claims={DEVICE_CLAIM: True, "mender.plan": "enterprise"},
    )


def _write_auth_set_status(device: Device, auth_set: AuthSet, to: str) -> None:
    """The only writer of AuthSet.status. Call with the device row locked."""
    if to == AuthSetStatus.ACCEPTED:
        # At most one accepted auth set per device: the previous one is rejected and its tokens die.
        previous = device.auth_sets.filter(status=AuthSetStatus.ACCEPTED).exclude(
            pk=auth_set.pk
        )
        DeviceToken.objects.filter(auth_set__in=previous).delete()
        previous.update(status=AuthSetStatus.REJECTED)
    if auth_set.status == AuthSetStatus.ACCEPTED and to != AuthSetStatus.ACCEPTED:
        DeviceToken.objects.filter(auth_set=auth_set).delete()
    auth_set.status = to
    auth_set.save(update_fields=["status"])


def _refresh_device_status(device: Device) -> None:
    """Recompute a (not decommissioned) device's status from its auth sets."""
    statuses = set(device.auth_sets.values_list("status", flat=True))
    _write_device_status(device, device_status_from_auth_sets(statuses))


def _write_device_status(device: Device, to: DeviceStatus) -> None:
    """The only writer of Device.status."""
    if device.status == to:
        return
    device.status = to
    device.save(update_fields=["status", "updated_ts"])
    # Saved filters hold accepted devices only: the device may join or leave some.
    recheck_device_memberships(device_ids=[device.pk])


def _lock_device(device_id: uuid.UUID) -> Device:
    device = device_qs_for_update().filter(pk=device_id).first()
    if device is None:
        raise DeviceNotFound("device not found")
    return device


@transaction.atomic
def set_auth_set_status(
    *, device_id: uuid.UUID, auth_set_id: uuid.UUID, to: str
) -> AuthSet:
    """Accept, reject or reset an auth set (operator decision); idempotent for the current status."""
    device = _lock_device(device_id)
    if device.status == DeviceStatus.DECOMMISSIONED:
        raise DeviceNotFound("device not found")
    auth_set = device.auth_sets.filter(pk=auth_set_id).first()
    if auth_set is None:
        raise AuthSetNotFound("auth set not found")
    if to not in (
        AuthSetStatus.ACCEPTED,
        AuthSetStatus.REJECTED,
        AuthSetStatus.PENDING,
    ):
        raise InvalidAuthSetTransition(f"invalid status: {to}")
    if auth_set.status == to:
        return auth_set
    if not can_transition_auth_set(auth_set.status, to):
        raise InvalidAuthSetTransition(
            f"cannot change auth set from {auth_set.status} to {to}"
        )
    _write_auth_set_status(device, auth_set, to)
    _refresh_device_status(device)
    return auth_set


@transaction.atomic
def preauthorize_device(
    *, identity_data: dict[str, Any], pubkey: str, force: bool = False
) -> Device:
    """Create a device with a preauthorized auth set: it is accepted on its first auth request."""
    if not isinstance(identity_data, dict) or not identity_data:
        raise InvalidAuthRequest("identity_data must be a non-empty object")
    identity_json, identity_hash = canonical_identity(identity_data)
    _check_sizes(identity_json=identity_json, pubkey=pubkey)
    try:
        _, canonical_pem = load_public_key(pubkey)
    except UnsupportedKey as exc:
        raise InvalidAuthRequest(str(exc)) from None
    device = device_qs_for_update().filter(identity_hash=identity_hash).first()
    if device is not None and not force:
        raise DeviceAlreadyExists(
            "device already exists", metadata={"id": str(device.id)}
        )
    if device is None:
        device = Device.objects.create(
            identity_data=identity_data,
            identity_hash=identity_hash,
            status=DeviceStatus.PREAUTHORIZED,
        )
    elif device.status == DeviceStatus.DECOMMISSIONED:
        raise DeviceAlreadyExists(
            "device is decommissioned", metadata={"id": str(device.id)}
        )
    auth_set, created = AuthSet.objects.get_or_create(
        device=device,
        pubkey=canonical_pem,
        defaults={
            "identity_data": identity_data,
            "status": AuthSetStatus.PREAUTHORIZED,
        },
    )
    if not created and auth_set.status != AuthSetStatus.ACCEPTED:
        _write_auth_set_status(device, auth_set, AuthSetStatus.PREAUTHORIZED)
    _refresh_device_status(device)
    return device


@transaction.atomic
def decommission_device(*, device_id: uuid.UUID) -> Device:
    """Retire a device for good: every token it holds stops working and it cannot authenticate again."""
    device = _lock_device(device_id)
    if device.status == DeviceStatus.DECOMMISSIONED:
        raise DeviceNotFound("device not found")  # gone already, as in Mender
    DeviceToken.objects.filter(device=device).delete()
    _write_device_status(device, DeviceStatus.DECOMMISSIONED)
    run_decommission_hooks(device_id=device.id)
    return device


@transaction.atomic
def delete_auth_set(*, device_id: uuid.UUID, auth_set_id: uuid.UUID) -> None:
    """Remove one auth set (its tokens die with it); a device left without any is deleted if never accepted."""
    device = _lock_device(device_id)
    if device.status == DeviceStatus.DECOMMISSIONED:
        raise DeviceNotFound("device not found")
    deleted, _ = AuthSet.objects.filter(device=device, pk=auth_set_id).delete()
    if not deleted:
        raise AuthSetNotFound("auth set not found")
    if not device.auth_sets.exists() and device.status in (
        DeviceStatus.PREAUTHORIZED,
        DeviceStatus.PENDING,
    ):
        device.delete()
        return
    _refresh_device_status(device)


def revoke_device_token(*, token_id: uuid.UUID) -> bool:
    """Delete one issued device token; True if it existed."""
    deleted, _ = DeviceToken.objects.filter(pk=token_id).delete()
    return deleted > 0


def purge_expired_device_tokens(*, now: dt.datetime, limit: int) -> int:
    """Delete up to ``limit`` expired token rows; return how many were deleted."""
    expired_ids = list(
        DeviceToken.objects.filter(expires_ts__lt=now).values_list("pk", flat=True)[
            :limit
        ]
    )
    deleted, _ = DeviceToken.objects.filter(pk__in=expired_ids).delete()
    return deleted
