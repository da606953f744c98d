"""Decoding and shape-checking of the small text documents inside an artifact.

Strictness follows mender-artifact 3.9's reader (the one the Mender server and client use):
`version` and v3 `header-info` (including `artifact_provides`) reject unknown keys, while
`artifact_depends`, v2 `header-info` and `type-info` are decoded leniently there, so unknown keys
are ignored here too. Value types are always checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from config.input_policy import UnacceptableInput, check_document
from deployments_app.artifact_format.errors import ArtifactError

SUPPORTED_VERSIONS = (2, 3)

# Limits the Mender server applies to device_types_compatible at upload.
MAX_DEVICE_TYPES = 200
MAX_DEVICE_TYPE_LENGTH = 4096
# Artifact and release names are stored in 4096-character columns.
MAX_ARTIFACT_NAME_LENGTH = 4096

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Signature lengths in bytes: ECDSA r||s for P-256, P-384, P-521; RSA 1024 to 16384-bit moduli.
_ECDSA_SIGNATURE_LENGTHS = (64, 96, 132)
_RSA_SIGNATURE_LENGTHS = (128, 2048)


@dataclass(frozen=True)
class VersionInfo:
    format: str
    version: int


@dataclass(frozen=True)
class HeaderInfo:
    """header-info of either format version, normalised to the v3 vocabulary."""

    # None: empty payload; "": "no override" (augment header only).
    payload_types: list[str | None]
    artifact_name: str
    artifact_group: str | None
    device_types: list[str]
    depends_artifact_name: list[str]
    depends_artifact_group: list[str]


@dataclass(frozen=True)
class TypeInfo:
    type: str | None
    provides: dict[str, str]
    depends: dict[str, str | list[str]]
    clears: (
        list[str] | None
    )  # None when the key is absent: an augment header then keeps the original's


def load_json(raw: bytes, *, what: str) -> Any:
    """Decode one JSON document, rejecting NaN/Infinity, invalid UTF-8 and pathological nesting."""
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ArtifactError(f"{what} is not valid UTF-8") from None
    except RecursionError:
        raise ArtifactError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise ArtifactError(f"{what} is not valid JSON: {exc}") from None
    try:
        check_document(document, what=what)
    except UnacceptableInput as exc:
        raise ArtifactError(str(exc)) from None
    return document


def parse_version(raw: bytes) -> VersionInfo:
    doc = _object(load_json(raw, what="version"), what="version")
    _reject_unknown_keys(doc, {"format", "version"}, what="version")
    fmt = doc.get("format")
    if fmt != "mender":
        raise ArtifactError(
            f"version: unsupported artifact format {fmt!r} (expected 'mender')"
        )
    version = doc.get("version")
    if not _is_int(version):
        raise ArtifactError("version: 'version' must be an integer")
    if version == 1:
        raise ArtifactError("version: artifact format version 1 is no longer supported")
    if version not in SUPPORTED_VERSIONS:
        raise ArtifactError(f"version: unsupported artifact format version {version}")
    return VersionInfo(format=fmt, version=version)


def parse_header_info_v3(raw: bytes, *, augment: bool = False) -> HeaderInfo:
    what = "header-augment header-info" if augment else "header-info"
    doc = _object(load_json(raw, what=what), what=what)
    _reject_unknown_keys(
        doc, {"payloads", "artifact_provides", "artifact_depends"}, what=what
    )

    payload_types = _payload_types(
        doc.get("payloads"), what=f"{what} payloads", augment=augment
    )

    provides = doc.get("artifact_provides")
    name = ""
    group: str | None = None
    if provides is not None or not augment:
        provides = _object(provides, what=f"{what} artifact_provides")
        _reject_unknown_keys(
            provides,
            {"artifact_name", "artifact_group"},
            what=f"{what} artifact_provides",
        )
        name = _string(
            provides.get("artifact_name"),
            what=f"{what} artifact_provides.artifact_name",
        )
        if not name and not augment:
            raise ArtifactError(
                f"{what}: artifact_provides.artifact_name must not be empty"
            )
        _check_name_length(name, what=f"{what} artifact_provides.artifact_name")
        raw_group = provides.get("artifact_group")
        group = (
            _string(raw_group, what=f"{what} artifact_provides.artifact_group")
            if raw_group is not None
            else None
        )

    depends = doc.get("artifact_depends")
    device_types: list[str] = []
    depends_names: list[str] = []
    depends_groups: list[str] = []
    if depends is not None or not augment:
        depends = _object(depends, what=f"{what} artifact_depends")
        device_types = _device_types(
            depends.get("device_type"), what=f"{what} artifact_depends.device_type"
        )
        depends_names = _optional_string_list(
            depends.get("artifact_name"), what=f"{what} artifact_depends.artifact_name"
        )
        depends_groups = _optional_string_list(
            depends.get("artifact_group"),
            what=f"{what} artifact_depends.artifact_group",
        )

    return HeaderInfo(
        payload_types=payload_types,
        artifact_name=name,
        artifact_group=group or None,
        device_types=device_types,
        depends_artifact_name=depends_names,
        depends_artifact_group=depends_groups,
    )


def parse_header_info_v2(raw: bytes) -> HeaderInfo:
    what = "header-info"
    doc = _object(load_json(raw, what=what), what=what)
    name = _string(doc.get("artifact_name"), what=f"{what} artifact_name")
    if not name:
        raise ArtifactError(f"{what}: artifact_name must not be empty")
    _check_name_length(name, what=f"{what} artifact_name")
    updates = doc.get("updates")
    if not isinstance(updates, list) or not updates:
        raise ArtifactError(f"{what}: 'updates' must be a non-empty list")
    payload_types: list[str | None] = []
    for update in updates:
        update = _object(update, what=f"{what} updates entry")
        update_type = _string(update.get("type"), what=f"{what} updates entry type")
        if not update_type:
            raise ArtifactError(f"{what}: empty payload type")
        payload_types.append(update_type)
    return HeaderInfo(
        payload_types=payload_types,
        artifact_name=name,
        artifact_group=None,
        device_types=_device_types(
            doc.get("device_types_compatible"), what=f"{what} device_types_compatible"
        ),
        depends_artifact_name=[],
        depends_artifact_group=[],
    )


def parse_type_info(raw: bytes, *, what: str) -> TypeInfo:
    doc = _object(load_json(raw, what=what), what=what)
    type_ = doc.get("type")
    if type_ is not None:
        type_ = _string(type_, what=f"{what} type")

    provides: dict[str, str] = {}
    for key, value in _optional_object(
        doc.get("artifact_provides"), what=f"{what} artifact_provides"
    ).items():
        provides[key] = _string(value, what=f"{what} artifact_provides.{key}")

    depends: dict[str, str | list[str]] = {}
    for key, value in _optional_object(
        doc.get("artifact_depends"), what=f"{what} artifact_depends"
    ).items():
        if isinstance(value, list):
            depends[key] = _string_list(value, what=f"{what} artifact_depends.{key}")
        else:
            depends[key] = _string(value, what=f"{what} artifact_depends.{key}")

    clears = doc.get("clears_artifact_provides")
    if clears is not None:
        clears = _string_list(clears, what=f"{what} clears_artifact_provides")
    return TypeInfo(type=type_, provides=provides, depends=depends, clears=clears)


def parse_meta_data(raw: bytes, *, what: str) -> dict[str, Any] | None:
    """meta-data is optional and written as 0 bytes for rootfs-image; both mean "none"."""
    if not raw.strip():
        return None
    doc = load_json(raw, what=what)
    if not isinstance(doc, dict):
        raise ArtifactError(f"{what}: the top level must be a JSON object")
    return doc


def parse_files_v2(raw: bytes, *, what: str) -> list[str]:
    doc = _object(load_json(raw, what=what), what=what)
    _reject_unknown_keys(doc, {"files"}, what=what)
    names = _string_list(doc.get("files"), what=f"{what} files")
    if any(not name for name in names):
        raise ArtifactError(f"{what}: file names must not be empty")
    return names


def parse_manifest(raw: bytes, *, what: str) -> dict[str, str]:
    """Parse `<sha256 hex>  <path>` lines (sha256sum format) into path -> checksum."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(f"{what} is not valid UTF-8") from None
    entries: dict[str, str] = {}
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        parts = line.split("  ")
        if len(parts) != 2 or not _SHA256_HEX.fullmatch(parts[0]) or not parts[1]:
            raise ArtifactError(f"{what}: malformed line {line!r}")
        checksum, path = parts
        if path in entries:
            raise ArtifactError(f"{what}: {path} is listed twice")
        entries[path] = checksum
    if not entries:
        raise ArtifactError(f"{what} is empty")
    return entries


def check_manifest_signature(raw: bytes) -> None:
    """Refuse a manifest.sig that no key could verify: not base64, or of no signature's length.

    mender-artifact 3.9 base64-decodes the signature (Go's StdEncoding: padding required,
    CR and LF ignored) and needs 2 x the curve size for ECDSA (P-256, P-384, P-521) or the
    modulus size for RSA. Whether it verifies needs the device's key; devices check that.
    """
    try:
        decoded = base64.b64decode(
            raw.replace(b"\r", b"").replace(b"\n", b""), validate=True
        )
    except binascii.Error:
        raise ArtifactError("manifest.sig is not valid base64") from None
    length = len(decoded)
    if length not in _ECDSA_SIGNATURE_LENGTHS and not (
        _RSA_SIGNATURE_LENGTHS[0] <= length <= _RSA_SIGNATURE_LENGTHS[1]
    ):
        raise ArtifactError(
            f"manifest.sig: a {length}-byte signature fits no ECDSA or RSA key"
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: Any, *, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ArtifactError(f"{what} must be a JSON object")
    return value


def _optional_object(value: Any, *, what: str) -> dict[str, Any]:
    return {} if value is None else _object(value, what=what)


def _string(value: Any, *, what: str) -> str:
    if not isinstance(value, str):
        raise ArtifactError(f"{what} must be a string")
    return value


def _check_name_length(name: str, *, what: str) -> None:
    if len(name) > MAX_ARTIFACT_NAME_LENGTH:
        raise ArtifactError(
            f"{what} is longer than {MAX_ARTIFACT_NAME_LENGTH} characters"
        )


def _string_list(value: Any, *, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ArtifactError(f"{what} must be a list of strings")
    return list(value)


def _optional_string_list(value: Any, *, what: str) -> list[str]:
    return [] if value is None else _string_list(value, what=what)


def _reject_unknown_keys(doc: dict[str, Any], allowed: set[str], *, what: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ArtifactError(f"{what}: unknown field(s) {', '.join(unknown)}")


def _payload_types(value: Any, *, what: str, augment: bool) -> list[str | None]:
    if not isinstance(value, list) or not value:
        raise ArtifactError(f"{what} must be a non-empty list")
    types: list[str | None] = []
    for entry in value:
        entry = _object(entry, what=f"{what} entry")
        _reject_unknown_keys(entry, {"type"}, what=f"{what} entry")
        if "type" not in entry:
            raise ArtifactError(f"{what} entry has no 'type'")
        payload_type = entry["type"]
        if payload_type is None:
            if augment:
                raise ArtifactError(f"{what}: an empty payload cannot be augmented")
            types.append(None)
            continue
        payload_type = _string(payload_type, what=f"{what} entry type")
        if not payload_type and not augment:
            raise ArtifactError(f"{what}: empty payload type")
        types.append(payload_type)
    return types


def _device_types(value: Any, *, what: str) -> list[str]:
    device_types = _string_list(value, what=what) if value is not None else []
    if not device_types:
        raise ArtifactError(f"{what}: at least one compatible device type is required")
    if len(device_types) > MAX_DEVICE_TYPES:
        raise ArtifactError(f"{what}: more than {MAX_DEVICE_TYPES} device types")
    for device_type in device_types:
        if not 1 <= len(device_type) <= MAX_DEVICE_TYPE_LENGTH:
            raise ArtifactError(
                f"{what}: device types must be 1 to {MAX_DEVICE_TYPE_LENGTH} characters long"
            )
    return device_types
