"""Canonical forms of device identities and public keys, and auth-request signature checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from devices_app.exceptions import UnsupportedKey

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def canonical_identity(identity_data: dict[str, Any]) -> tuple[str, str]:
    """Return (canonical JSON, sha256 hex) of an identity: sorted keys, compact separators."""
    canonical = json.dumps(identity_data, sort_keys=True, separators=(",", ":"))
    return canonical, hashlib.sha256(canonical.encode()).hexdigest()


def load_public_key(pem: str) -> tuple[PublicKey, str]:
    """Parse a PEM SubjectPublicKeyInfo; return the key and its canonical PEM text."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise UnsupportedKey("failed to parse public key") from exc
    if not isinstance(
        key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    ):
        raise UnsupportedKey("unsupported public key type")
    canonical = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return key, canonical


def verify_signature(key: PublicKey, raw_body: bytes, signature_b64: str) -> bool:
    """Check X-MEN-Signature over the exact request bytes (RSA PKCS#1 v1.5, ECDSA DER, Ed25519)."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, raw_body, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, raw_body, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, raw_body)
    except (InvalidSignature, ValueError):
        return False
    return True
