"""Device keys and signed auth requests built exactly like the Mender client builds them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

KEY_KINDS = ("rsa3072", "rsa2048", "p256", "ed25519")


@dataclass(frozen=True)
class DeviceKey:
    kind: str
    private_key: Any

    @property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            .decode()
        )

    def sign(self, message: bytes) -> str:
        if self.kind.startswith("rsa"):
            signature = self.private_key.sign(
                message, padding.PKCS1v15(), hashes.SHA256()
            )
        elif self.kind == "p256":
            signature = self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))
        else:
            signature = self.private_key.sign(message)
        return base64.b64encode(signature).decode()


def make_key(kind: str) -> DeviceKey:
    if kind == "rsa3072":
        return DeviceKey(
            kind, rsa.generate_private_key(public_exponent=65537, key_size=3072)
        )
    if kind == "rsa2048":
        return DeviceKey(
            kind, rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
    if kind == "p256":
        return DeviceKey(kind, ec.generate_private_key(ec.SECP256R1()))
    if kind == "ed25519":
        return DeviceKey(kind, ed25519.Ed25519PrivateKey.generate())
    raise ValueError(kind)


def auth_request_body(
    key: DeviceKey, identity: dict[str, Any], tenant_token: str = ""
) -> bytes:
    """Compact JSON with id_data as a JSON string and a trailing newline (Go's json.Encoder)."""
    id_data = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    body = {"id_data": id_data, "tenant_token": tenant_token, "pubkey": key.public_pem}
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


def signed_auth_request(key: DeviceKey, identity: dict[str, Any]) -> tuple[bytes, str]:
    body = auth_request_body(key, identity)
    return body, key.sign(body)
