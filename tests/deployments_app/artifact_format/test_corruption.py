"""Broken, tampered and hostile artifacts: every one must end in ArtifactError, never another exception.

Most cases start from a real mender-artifact 3.9 artifact, change one thing and, where the point is not
the checksum itself, recompute the manifest so that the intended check is the one that fires.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import random
import re
import tarfile
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from deployments_app.artifact_format import ArtifactError, ArtifactMeta, read_artifact
from tests.deployments_app.artifact_format.conftest import PAYLOAD_FILES

TEN_MIB = 10 * 1024 * 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _suffix(name: str) -> str:
    return ".gz" if name.endswith(".gz") else ".xz" if name.endswith(".xz") else ""


def _compress(data: bytes, suffix: str) -> bytes:
    if suffix == ".gz":
        return gzip.compress(data)
    if suffix == ".xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    return data


def _decompress(data: bytes, suffix: str) -> bytes:
    if suffix == ".gz":
        return gzip.decompress(data)
    if suffix == ".xz":
        return lzma.decompress(data)
    return data


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""


def split_tar(raw: bytes) -> list[Member]:
    members = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for info in tar:
            fileobj = tar.extractfile(info) if info.isreg() else None
            data = fileobj.read() if fileobj is not None else b""
            members.append(Member(info.name, data, info.type, info.linkname))
    return members


def join_tar(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.type
            info.linkname = member.linkname
            info.mtime = 1_700_000_000
            info.mode = 0o600
            is_file = member.type == tarfile.REGTYPE
            info.size = len(member.data) if is_file else 0
            tar.addfile(info, io.BytesIO(member.data) if is_file else None)
    return buffer.getvalue()


class Editable:
    """An artifact taken apart into outer members, to be changed and put back together."""

    def __init__(self, raw: bytes) -> None:
        self.members = split_tar(raw)

    def __getitem__(self, name: str) -> Member:
        return next(member for member in self.members if member.name == name)

    def position(self, name: str) -> int:
        return next(i for i, member in enumerate(self.members) if member.name == name)

    def put(self, name: str, data: bytes) -> None:
        self.members[self.position(name)] = replace(self[name], data=data)

    @property
    def header_name(self) -> str:
        return next(
            member.name
            for member in self.members
            if member.name.startswith("header.tar")
        )

    @property
    def data_name(self) -> str:
        return next(
            member.name for member in self.members if member.name.startswith("data/")
        )

    def manifest(self) -> dict[str, str]:
        lines = self["manifest"].data.decode().splitlines()
        return {
            path: checksum
            for checksum, path in (line.split("  ") for line in lines if line)
        }

    def set_manifest(self, entries: dict[str, str]) -> None:
        self.put(
            "manifest",
            "".join(
                f"{checksum}  {path}\n" for path, checksum in entries.items()
            ).encode(),
        )

    def set_checksum(self, path: str, data: bytes) -> None:
        entries = self.manifest()
        entries[path] = _sha(data)
        self.set_manifest(entries)

    def put_document(self, name: str, data: bytes) -> None:
        """Replace an outer member that the manifest covers (version, header archive) and re-sum it."""
        self.put(name, data)
        self.set_checksum(name, data)

    def edit_archive(
        self, name: str, edit: Callable[[list[Member]], list[Member]]
    ) -> None:
        suffix = _suffix(name)
        inner = split_tar(_decompress(self[name].data, suffix))
        packed = _compress(join_tar(edit(inner)), suffix)
        if name.startswith("data/"):
            self.put(name, packed)
        else:
            self.put_document(name, packed)

    def edit_header_json(self, entry: str, edit: Callable[[Any], Any]) -> None:
        def change(members: list[Member]) -> list[Member]:
            return [
                replace(m, data=json.dumps(edit(json.loads(m.data))).encode())
                if m.name == entry
                else m
                for m in members
            ]

        self.edit_archive(self.header_name, change)

    def set_header_entry(self, entry: str, data: bytes) -> None:
        self.edit_archive(
            self.header_name,
            lambda members: [
                replace(m, data=data) if m.name == entry else m for m in members
            ],
        )

    def build(self) -> bytes:
        return join_tar(self.members)


Mutation = Callable[[Editable], None]


def _with(key: str, value: Any) -> Callable[[Any], Any]:
    def edit(doc: Any) -> Any:
        return {**doc, key: value}

    return edit


def _swap(first: str, second: str) -> Mutation:
    def mutate(artifact: Editable) -> None:
        i, j = artifact.position(first), artifact.position(second)
        artifact.members[i], artifact.members[j] = (
            artifact.members[j],
            artifact.members[i],
        )

    return mutate


def _append_member(member: Member) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.members.append(member)

    return mutate


def _set_version(doc: dict[str, Any]) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.put_document("version", json.dumps(doc).encode())

    return mutate


def _header_json(entry: str, edit: Callable[[Any], Any]) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.edit_header_json(entry, edit)

    return mutate


def _header_raw(entry: str, data: bytes) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.set_header_entry(entry, data)

    return mutate


def _header_members(edit: Callable[[list[Member]], list[Member]]) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.edit_archive(artifact.header_name, edit)

    return mutate


def _add_data_file(
    name: str, data: bytes, *, listed: bool, type_: bytes = tarfile.REGTYPE
) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.edit_archive(
            artifact.data_name,
            lambda members: [*members, Member(name, data, type_, "x")],
        )
        if listed:
            artifact.set_checksum(f"data/0000/{name}", data)

    return mutate


def _manifest(edit: Callable[[dict[str, str]], dict[str, str]]) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.set_manifest(edit(artifact.manifest()))

    return mutate


def _raw_manifest(data: bytes) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.put("manifest", data)

    return mutate


def _drop_member(name: str) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.members.pop(artifact.position(name))

    return mutate


def _rename_member(old: str, new: str) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.members[artifact.position(old)] = replace(artifact[old], name=new)

    return mutate


def _move_to_end(name: str) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.members.append(artifact.members.pop(artifact.position(name)))

    return mutate


def _duplicate_member(name: str) -> Mutation:
    def mutate(artifact: Editable) -> None:
        artifact.members.append(artifact[name])

    return mutate


def _reorder_header(*names: str) -> Mutation:
    def edit(members: list[Member]) -> list[Member]:
        by_name = {m.name: m for m in members}
        return [by_name[name] for name in names]

    return _header_members(edit)


def _compose(*mutations: Mutation) -> Mutation:
    def mutate(artifact: Editable) -> None:
        for mutation in mutations:
            mutation(artifact)

    return mutate


GZ = "module_gzip"  # version, manifest, header.tar.gz (header-info, 2 scripts, type-info, meta-data), data/0000.tar.gz
NONE = "module_none"  # same shape, uncompressed
SIGNED = (
    "signed_ecdsa"  # version, manifest, manifest.sig, header.tar.gz, data/0000.tar.gz
)
AUGMENTED = "augmented"  # ... manifest-augment, header.tar.gz, header-augment.tar.gz, data/0000.tar.gz

CASES = [
    # -- outer member order (§4.1) -------------------------------------------------------------
    pytest.param(
        GZ,
        _swap("version", "manifest"),
        "expected version first, found 'manifest'",
        id="manifest-first",
    ),
    pytest.param(
        GZ,
        _swap("manifest", "header.tar.gz"),
        "expected manifest after version",
        id="header-before-manifest",
    ),
    pytest.param(
        GZ,
        _swap("header.tar.gz", "data/0000.tar.gz"),
        "unexpected member 'data/0000.tar.gz'",
        id="data-before-header",
    ),
    pytest.param(
        SIGNED,
        _move_to_end("manifest.sig"),
        "unexpected member 'manifest.sig' after the header",
        id="sig-after-data",
    ),
    pytest.param(
        SIGNED,
        _swap("manifest.sig", "header.tar.gz"),
        "unexpected member 'manifest.sig' after the header",
        id="sig-after-header",
    ),
    pytest.param(
        AUGMENTED,
        _swap("header.tar.gz", "header-augment.tar.gz"),
        "unexpected member 'header-augment.tar.gz'",
        id="augment-header-first",
    ),
    pytest.param(
        AUGMENTED,
        _drop_member("header-augment.tar.gz"),
        "expected header-augment.tar.gz after header.tar.gz",
        id="augment-header-missing",
    ),
    pytest.param(
        GZ,
        _rename_member("header.tar.gz", "header-augment.tar.gz"),
        "unexpected member 'header-augment.tar.gz'",
        id="augment-header-without-augment-manifest",
    ),
    pytest.param(
        GZ,
        _duplicate_member("data/0000.tar.gz"),
        "out of order or repeated",
        id="data-archive-twice",
    ),
    pytest.param(
        GZ,
        _duplicate_member("version"),
        "unexpected member 'version' after the header",
        id="version-twice",
    ),
    pytest.param(
        GZ,
        _rename_member("data/0000.tar.gz", "data/0001.tar.gz"),
        "data/0001.tar.gz has no matching payload",
        id="data-archive-for-missing-payload",
    ),
    pytest.param(
        GZ,
        _rename_member("data/0000.tar.gz", "data/0000.tar.bz2"),
        "unexpected member 'data/0000.tar.bz2'",
        id="unknown-compression",
    ),
    pytest.param(
        GZ,
        _drop_member("manifest"),
        "expected manifest after version",
        id="no-manifest",
    ),
    pytest.param(
        GZ,
        _drop_member("header.tar.gz"),
        "unexpected member 'data/0000.tar.gz'",
        id="no-header",
    ),
    pytest.param(
        GZ,
        _append_member(Member("data", type=tarfile.DIRTYPE)),
        "artifact member 'data' is not a regular file",
        id="directory-member",
    ),
    # -- version --------------------------------------------------------------------------------
    pytest.param(
        GZ,
        _set_version({"format": "mender", "version": 7}),
        "unsupported artifact format version 7",
        id="version-7",
    ),
    pytest.param(
        GZ,
        _set_version({"format": "mender", "version": 1}),
        "version 1 is no longer supported",
        id="version-1",
    ),
    pytest.param(
        GZ,
        _set_version({"format": "mender", "version": "3"}),
        "'version' must be an integer",
        id="version-string",
    ),
    pytest.param(
        GZ,
        _set_version({"format": "rpm", "version": 3}),
        "unsupported artifact format 'rpm'",
        id="format-rpm",
    ),
    pytest.param(
        GZ,
        _set_version({"format": "mender", "version": 3, "x": 1}),
        "version: unknown field(s) x",
        id="version-unknown-key",
    ),
    pytest.param(
        GZ,
        _set_version({"format": "mender", "version": 2}),
        "header-info artifact_name must be a string",
        id="v3-header-claims-v2",
    ),
    # -- checksums --------------------------------------------------------------------------------
    pytest.param(
        GZ,
        lambda a: a.put("version", b'{"format":"mender","version":2}'),
        "invalid checksum for version",
        id="version-tampered",
    ),
    pytest.param(
        GZ,
        _manifest(lambda m: {**m, "header.tar.gz": "0" * 64}),
        "invalid checksum for header.tar.gz",
        id="header-checksum-wrong",
    ),
    pytest.param(
        GZ,
        _manifest(lambda m: {k: v for k, v in m.items() if k != "version"}),
        "version is not listed in the manifest",
        id="version-not-in-manifest",
    ),
    pytest.param(
        GZ,
        _manifest(lambda m: {k: v for k, v in m.items() if k != "header.tar.gz"}),
        "header.tar.gz is not listed in the manifest",
        id="header-not-in-manifest",
    ),
    pytest.param(
        GZ,
        _manifest(lambda m: {**m, "data/0000/ghost.bin": "0" * 64}),
        "files listed in the manifest are missing from the artifact: data/0000/ghost.bin",
        id="manifest-extra-entry",
    ),
    pytest.param(
        GZ,
        _drop_member("data/0000.tar.gz"),
        "missing from the artifact: data/0000/payload.txt, data/0000/second.bin",
        id="data-archive-missing",
    ),
    pytest.param(
        GZ,
        _manifest(lambda m: {**m, "data/0001/x.bin": "0" * 64}),
        "data/0001/x.bin does not belong to any payload",
        id="manifest-entry-for-missing-payload",
    ),
    pytest.param(
        GZ,
        _add_data_file("extra.bin", b"smuggled", listed=False),
        "data/0000/extra.bin is not listed in the manifest",
        id="unlisted-data-file",
    ),
    pytest.param(
        GZ,
        _manifest(
            lambda m: {k: v for k, v in m.items() if k != "data/0000/second.bin"}
        ),
        "data/0000/second.bin is not listed in the manifest",
        id="data-file-dropped-from-manifest",
    ),
    pytest.param(
        GZ,
        _raw_manifest(b"not a manifest line\n"),
        "manifest: malformed line",
        id="manifest-garbled",
    ),
    pytest.param(
        GZ,
        _raw_manifest(b"ABCDEF  version\n"),
        "manifest: malformed line 'ABCDEF  version'",
        id="manifest-bad-hex",
    ),
    pytest.param(
        GZ,
        lambda a: a.put("manifest", a["manifest"].data + a["manifest"].data),
        "manifest: data/0000/payload.txt is listed twice",
        id="manifest-duplicate",
    ),
    pytest.param(
        AUGMENTED,
        lambda a: a.put("manifest-augment", a["manifest"].data),
        "manifest: data/0000/payload.txt is listed twice",
        id="augment-manifest-duplicates-manifest",
    ),
    # -- header-info ------------------------------------------------------------------------------
    pytest.param(
        GZ,
        _header_raw("header-info", b'{"payloads": ['),
        "header-info is not valid JSON",
        id="header-info-bad-json",
    ),
    pytest.param(
        GZ,
        _header_raw("header-info", b""),
        "header-info is not valid JSON",
        id="header-info-empty",
    ),
    pytest.param(
        GZ,
        _header_raw("header-info", b"\xff\xfe{}"),
        "header-info is not valid UTF-8",
        id="header-info-not-utf8",
    ),
    pytest.param(
        GZ,
        _header_raw("header-info", b"[" * 100_000),
        "header-info is nested too deeply",
        id="header-info-deep-nesting",
    ),
    pytest.param(
        GZ,
        _header_json("header-info", _with("surprise", 1)),
        "header-info: unknown field(s) surprise",
        id="header-info-unknown-key",
    ),
    pytest.param(
        GZ,
        _header_json(
            "header-info",
            lambda d: {**d, "artifact_provides": {**d["artifact_provides"], "x": "y"}},
        ),
        "header-info artifact_provides: unknown field(s) x",
        id="header-provides-unknown-key",
    ),
    pytest.param(
        GZ,
        _header_json(
            "header-info", lambda d: {**d, "artifact_provides": {"artifact_name": 5}}
        ),
        "header-info artifact_provides.artifact_name must be a string",
        id="artifact-name-not-string",
    ),
    pytest.param(
        GZ,
        _header_json(
            "header-info", lambda d: {**d, "artifact_provides": {"artifact_name": ""}}
        ),
        "artifact_name must not be empty",
        id="artifact-name-empty",
    ),
    pytest.param(
        GZ,
        _header_json(
            "header-info", lambda d: {**d, "artifact_depends": {"device_type": []}}
        ),
        "at least one compatible device type is required",
        id="no-device-types",
    ),
    pytest.param(
        GZ,
        _header_json(
            "header-info", lambda d: {**d, "artifact_depends": {"device_type": "dev-a"}}
        ),
        "artifact_depends.device_type must be a list of strings",
        id="device-type-not-list",
    ),
    pytest.param(
        GZ,
        _header_json(
            "header-info",
            lambda d: {**d, "artifact_depends": {"device_type": ["x"] * 201}},
        ),
        "more than 200 device types",
        id="too-many-device-types",
    ),
    pytest.param(
        GZ,
        _header_json("header-info", _with("payloads", [])),
        "header-info payloads must be a non-empty list",
        id="no-payloads",
    ),
    pytest.param(
        GZ,
        _header_json("header-info", _with("payloads", [{"type": ""}])),
        "header-info payloads: empty payload type",
        id="empty-payload-type",
    ),
    pytest.param(
        GZ,
        _header_json(
            "header-info", _with("payloads", [{"type": "single-file", "x": 1}])
        ),
        "header-info payloads entry: unknown field(s) x",
        id="payload-unknown-key",
    ),
    pytest.param(
        GZ,
        _header_json(
            "header-info",
            _with("payloads", [{"type": "single-file"}, {"type": "other"}]),
        ),
        "headers/0001/type-info is missing",
        id="payload-without-type-info",
    ),
    # -- type-info / meta-data ---------------------------------------------------------------------
    pytest.param(
        GZ,
        _header_json("headers/0000/type-info", _with("artifact_provides", {"k": 1})),
        "artifact_provides.k must be a string",
        id="type-info-provides-not-string",
    ),
    pytest.param(
        GZ,
        _header_json(
            "headers/0000/type-info", _with("artifact_depends", {"k": [1, 2]})
        ),
        "artifact_depends.k must be a list of strings",
        id="type-info-depends-not-strings",
    ),
    pytest.param(
        GZ,
        _header_json("headers/0000/type-info", _with("artifact_depends", {"k": []})),
        "depends 'k' must not be an empty list",
        id="type-info-depends-empty-list",
    ),
    pytest.param(
        GZ,
        _header_json(
            "headers/0000/type-info",
            _with("artifact_depends", {f"k{i}": ["a", "b"] for i in range(11)}),
        ),
        "depends expand to more than 1024 combinations",
        id="depends-combination-explosion",
    ),
    pytest.param(
        GZ,
        _header_json("headers/0000/type-info", _with("clears_artifact_provides", "x")),
        "clears_artifact_provides must be a list of strings",
        id="clears-not-list",
    ),
    pytest.param(
        GZ,
        _header_json("headers/0000/type-info", _with("type", "other")),
        "type 'other' does not match header-info payload type 'single-file'",
        id="type-info-type-mismatch",
    ),
    pytest.param(
        GZ,
        _header_raw("headers/0000/type-info", b""),
        "type-info is not valid JSON",
        id="type-info-empty",
    ),
    pytest.param(
        GZ,
        _header_raw("headers/0000/meta-data", b"[1, 2]"),
        "the top level must be a JSON object",
        id="meta-data-not-object",
    ),
    pytest.param(
        GZ,
        _header_raw("headers/0000/meta-data", b'{"x": NaN}'),
        "meta-data is not valid JSON",
        id="meta-data-nan",
    ),
    # -- header archive layout (§4.4) ---------------------------------------------------------------
    pytest.param(
        GZ,
        _reorder_header(
            "scripts/ArtifactInstall_Enter_01", "header-info", "headers/0000/type-info"
        ),
        "header-info must come first, found 'scripts/ArtifactInstall_Enter_01'",
        id="header-info-not-first",
    ),
    pytest.param(
        GZ,
        _reorder_header(
            "header-info", "headers/0000/type-info", "scripts/ArtifactInstall_Enter_01"
        ),
        "unexpected entry 'scripts/ArtifactInstall_Enter_01'",
        id="script-after-headers",
    ),
    pytest.param(
        GZ,
        _reorder_header(
            "header-info", "headers/0000/meta-data", "headers/0000/type-info"
        ),
        "headers/0000/meta-data must follow the payload's type-info",
        id="meta-data-before-type-info",
    ),
    pytest.param(
        GZ,
        _reorder_header("header-info", "headers/0000/meta-data"),
        "headers/0000/meta-data must follow",
        id="type-info-missing",
    ),
    pytest.param(
        GZ,
        _header_members(
            lambda ms: [*ms, Member("headers/0001/type-info", b'{"type": "x"}')]
        ),
        "headers/0001/type-info has no matching payload in header-info",
        id="bucket-without-payload",
    ),
    pytest.param(
        GZ,
        _header_members(
            lambda ms: [*ms, Member("headers/0000/files", b'{"files": []}')]
        ),
        "unexpected entry 'headers/0000/files'",
        id="v2-files-entry-in-v3",
    ),
    pytest.param(
        GZ,
        _header_members(lambda ms: [*ms, Member("headers/0000/type-info", b"{}")]),
        "must be the first and only type-info of its payload",
        id="type-info-twice",
    ),
    pytest.param(
        GZ,
        _header_members(
            lambda ms: [*ms, Member("headers/0000/link", type=tarfile.SYMTYPE)]
        ),
        "'headers/0000/link' is not a regular file",
        id="header-symlink",
    ),
    # -- unsafe names ------------------------------------------------------------------------------
    pytest.param(
        GZ,
        _append_member(Member("../evil", b"x")),
        "artifact: unsafe member name '../evil'",
        id="outer-dotdot",
    ),
    pytest.param(
        GZ,
        _append_member(Member("data/../../etc/cron.d/x", b"x")),
        "unsafe member name",
        id="outer-dotdot-nested",
    ),
    pytest.param(
        GZ,
        _append_member(Member("/etc/passwd", b"x")),
        "unsafe member name '/etc/passwd'",
        id="outer-absolute",
    ),
    pytest.param(
        GZ,
        _header_members(lambda ms: [*ms, Member("headers/0000/../../../tmp/x", b"{}")]),
        "header.tar.gz: unsafe member name 'headers/0000/../../../tmp/x'",
        id="header-dotdot",
    ),
    pytest.param(
        GZ,
        _add_data_file("../payload.txt", b"x", listed=False),
        "data/0000.tar.gz: unsafe member name '../payload.txt'",
        id="data-dotdot",
    ),
    pytest.param(
        GZ,
        _add_data_file("/etc/shadow", b"x", listed=False),
        "unsafe member name '/etc/shadow'",
        id="data-absolute",
    ),
    pytest.param(
        GZ,
        _manifest(lambda m: {**m, "data/0000/../../x": "0" * 64}),
        "manifest: unsafe member name 'data/0000/../../x'",
        id="manifest-dotdot",
    ),
    pytest.param(
        GZ,
        _add_data_file("sub/dir.bin", b"x", listed=False),
        "payload file name 'sub/dir.bin' is not allowed",
        id="data-subdirectory",
    ),
    pytest.param(
        GZ,
        _add_data_file("bad name.bin", b"x", listed=True),
        "payload file name 'bad name.bin' is not allowed",
        id="data-forbidden-character",
    ),
    pytest.param(
        GZ,
        _add_data_file("link.bin", b"", listed=True, type_=tarfile.SYMTYPE),
        "'link.bin' is not a regular file",
        id="data-symlink",
    ),
    pytest.param(
        GZ,
        _add_data_file("payload.txt", PAYLOAD_FILES["payload.txt"], listed=False),
        "data/0000/payload.txt occurs twice in the artifact",
        id="data-file-twice",
    ),
    pytest.param(
        "rootfs_v2",
        _header_raw("headers/0000/files", b'{"files": ["other.img"]}'),
        "data/0000/img.ext4 is not listed in headers/0000/files",
        id="v2-file-not-in-files-header",
    ),
    pytest.param(
        "rootfs_v2",
        _header_raw("headers/0000/files", b'{"files": ["img.ext4"], "x": 1}'),
        "headers/0000/files: unknown field(s) x",
        id="v2-files-unknown-key",
    ),
    pytest.param(
        "rootfs_v2",
        _header_json("header-info", _with("device_types_compatible", [])),
        "at least one compatible device type is required",
        id="v2-no-device-types",
    ),
    pytest.param(
        AUGMENTED,
        _rename_member("header-augment.tar.gz", "header-augment.tar.xz"),
        "expected header-augment.tar.gz after header.tar.gz",
        id="augment-header-other-compression",
    ),
]


@pytest.mark.parametrize(("base", "mutate", "message"), CASES)
def test_read_artifact_rejects_corrupt_artifact(
    artifact_bytes: Callable[[str], bytes], base: str, mutate: Mutation, message: str
) -> None:
    # given
    artifact = Editable(artifact_bytes(base))
    mutate(artifact)
    raw = artifact.build()

    # when
    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(raw))

    # then
    assert message in str(excinfo.value)


def _add_header_directories(members: list[Member]) -> list[Member]:
    dirs = [
        Member(name, type=tarfile.DIRTYPE)
        for name in ("scripts", "headers", "headers/0000")
    ]
    return [members[0], dirs[0], *members[1:3], dirs[1], dirs[2], *members[3:]]


TOLERATED = [
    pytest.param(
        _header_members(_add_header_directories), id="directory-entries-in-header"
    ),
    pytest.param(
        _header_json(
            "header-info",
            lambda d: {
                **d,
                "artifact_depends": {**d["artifact_depends"], "future": ["x"]},
            },
        ),
        id="unknown-key-in-header-depends-ignored",
    ),
    pytest.param(
        _header_json("headers/0000/type-info", _with("future", 1)),
        id="unknown-key-in-type-info-ignored",
    ),
    pytest.param(
        lambda a: a.put("manifest", a["manifest"].data.rstrip(b"\n")),
        id="manifest-without-final-newline",
    ),
]


@pytest.mark.parametrize("mutate", TOLERATED)
def test_read_artifact_tolerates_what_mender_artifact_tolerates(
    artifact_bytes: Callable[[str], bytes], mutate: Mutation
) -> None:
    # given
    original = read_artifact(io.BytesIO(artifact_bytes(GZ)))
    artifact = Editable(artifact_bytes(GZ))
    mutate(artifact)
    raw = artifact.build()

    # when
    meta = read_artifact(io.BytesIO(raw))

    # then
    assert replace(meta, size=0) == replace(original, size=0)
    assert meta.size == len(raw)


def test_read_artifact_treats_blank_meta_data_as_none(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    artifact = Editable(artifact_bytes(GZ))
    artifact.set_header_entry("headers/0000/meta-data", b" \n")

    meta = read_artifact(io.BytesIO(artifact.build()))

    assert meta.payloads[0].meta_data is None


def test_rebuilt_artifact_without_changes_is_still_valid(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    """Guards the table above: the rebuild itself must not be what breaks the artifacts."""
    for base in (GZ, NONE, SIGNED, AUGMENTED):
        artifact = Editable(artifact_bytes(base))
        artifact.edit_archive(artifact.header_name, lambda members: members)
        assert read_artifact(io.BytesIO(artifact.build())).name


def _member_offsets(raw: bytes) -> dict[str, tuple[int, int, int]]:
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return {info.name: (info.offset, info.offset_data, info.size) for info in tar}


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        pytest.param(
            lambda o: 0,
            "not a Mender artifact (expected an uncompressed tar archive): empty file",
            id="empty",
        ),
        pytest.param(
            lambda o: 100,
            "not a Mender artifact (expected an uncompressed tar archive)",
            id="in-first-header",
        ),
        pytest.param(
            lambda o: o["version"][1] + 5,
            "cannot read version: unexpected end of data",
            id="in-version",
        ),
        pytest.param(
            lambda o: o["manifest"][1] + 10,
            "cannot read manifest: unexpected end of data",
            id="in-manifest",
        ),
        pytest.param(
            lambda o: o["manifest"][1] + 512,
            "the header archive is missing",
            id="before-header",
        ),
        pytest.param(
            lambda o: o["header.tar.gz"][1] + o["header.tar.gz"][2] // 2,
            "invalid header.tar.gz",
            id="in-header",
        ),
        pytest.param(
            lambda o: o["data/0000.tar.gz"][0],
            "missing from the artifact: data/0000/payload.txt, data/0000/second.bin",
            id="before-data",
        ),
        pytest.param(
            lambda o: o["data/0000.tar.gz"][0] + 100,
            "artifact is truncated inside a tar header",
            id="in-data-tar-header",
        ),
        pytest.param(
            lambda o: o["data/0000.tar.gz"][1] + o["data/0000.tar.gz"][2] // 2,
            "invalid data/0000.tar.gz",
            id="in-data",
        ),
        pytest.param(
            lambda o: o["data/0000.tar.gz"][1] + o["data/0000.tar.gz"][2] - 1,
            "invalid data/0000.tar.gz",
            id="last-data-byte",
        ),
    ],
)
def test_read_artifact_rejects_truncated_artifact(
    artifact_bytes: Callable[[str], bytes],
    cut: Callable[[dict[str, tuple[int, int, int]]], int],
    message: str,
) -> None:
    # given
    raw = artifact_bytes(GZ)
    truncated = raw[: cut(_member_offsets(raw))]

    # when
    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(truncated))

    # then
    assert message in str(excinfo.value)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.99])
@pytest.mark.parametrize("base", [GZ, NONE, "module_xz", "rootfs_v2", AUGMENTED])
def test_read_artifact_rejects_artifact_cut_anywhere(
    artifact_bytes: Callable[[str], bytes], base: str, fraction: float
) -> None:
    # given: a cut before the last member's data ends (a cut inside the end-of-archive padding loses
    # nothing, and mender-artifact accepts such a file as well)
    raw = artifact_bytes(base)
    content_end = max(
        offset + size for _, offset, size in _member_offsets(raw).values()
    )

    # when / then
    with pytest.raises(ArtifactError):
        read_artifact(io.BytesIO(raw[: int(content_end * fraction)]))


def test_read_artifact_rejects_flipped_byte_in_payload(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    # given: module_none stores payload.txt uncompressed, so its bytes can be found in the file
    raw = bytearray(artifact_bytes(NONE))
    position = raw.index(b"hello from flotilla")
    raw[position] ^= 0x01
    expected = _sha(b"hello from flotilla\n")
    actual = _sha(bytes([b"h"[0] ^ 0x01]) + b"ello from flotilla\n")

    # when
    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(bytes(raw)))

    # then
    assert (
        str(excinfo.value)
        == f"invalid checksum for data/0000/payload.txt: expected {expected}, got {actual}"
    )


# Positions inside the compressed content. A flip in a data archive's trailer (after the inner tar's end)
# goes unnoticed, as in mender-artifact: every payload file is still verified by its own checksum.
@pytest.mark.parametrize("base", [GZ, "module_xz", "rootfs", AUGMENTED])
@pytest.mark.parametrize("where", [0.1, 0.3, 0.5])
def test_read_artifact_rejects_flipped_byte_in_compressed_archives(
    artifact_bytes: Callable[[str], bytes], base: str, where: float
) -> None:
    raw = artifact_bytes(base)
    for name, (_, offset, size) in _member_offsets(raw).items():
        if not name.endswith((".gz", ".xz")):
            continue
        corrupted = bytearray(raw)
        corrupted[offset + int(size * where)] ^= 0x40

        with pytest.raises(ArtifactError):
            read_artifact(io.BytesIO(bytes(corrupted)))


NOT_A_TAR = "not a Mender artifact (expected an uncompressed tar archive): "


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"", NOT_A_TAR + "empty file", id="empty"),
        pytest.param(b"hello world", NOT_A_TAR, id="text"),
        pytest.param(b'{"format": "mender", "version": 3}', NOT_A_TAR, id="json"),
        pytest.param(os.urandom(4096), NOT_A_TAR, id="random"),
        # all zeros is a valid, empty tar archive
        pytest.param(
            b"\x00" * 10240, "artifact is incomplete: version is missing", id="zeros"
        ),
    ],
)
def test_read_artifact_rejects_non_tar_input(raw: bytes, message: str) -> None:
    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(raw))

    assert str(excinfo.value).startswith(message)


def test_read_artifact_rejects_compressed_outer_file(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    with pytest.raises(ArtifactError, match=r"^not a Mender artifact"):
        read_artifact(io.BytesIO(gzip.compress(artifact_bytes(GZ))))


def test_read_artifact_rejects_tar_that_is_not_an_artifact() -> None:
    raw = join_tar([Member("README", b"hello")])

    with pytest.raises(
        ArtifactError,
        match=r"^wrong artifact structure: expected version first, found 'README'$",
    ):
        read_artifact(io.BytesIO(raw))


def test_read_artifact_applies_max_header_size_to_decompressed_header(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    # the compressed header is ~540 bytes, its tar 4 KiB: the limit must count what comes out of gzip
    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(artifact_bytes(GZ)), max_header_size=1024)

    assert (
        str(excinfo.value)
        == "header.tar.gz is larger than 1024 bytes when decompressed"
    )


def test_read_artifact_applies_max_header_size_to_manifest(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(artifact_bytes(GZ)), max_header_size=100)

    assert str(excinfo.value) == "manifest is larger than 100 bytes"


def _bomb_member_list(members: list[Member]) -> list[Member]:
    return [
        *members[:1],
        Member("scripts/ArtifactInstall_Enter_99", b"\x00" * (TEN_MIB + 1)),
        *members[1:],
    ]


@pytest.mark.parametrize("suffix", [".gz", ".xz"])
def test_read_artifact_rejects_header_decompression_bomb(
    artifact_bytes: Callable[[str], bytes], suffix: str
) -> None:
    # given: a header whose script decompresses past 10 MiB, with a correct manifest checksum
    artifact = Editable(artifact_bytes(GZ))
    header = split_tar(gzip.decompress(artifact["header.tar.gz"].data))
    bomb = _compress(join_tar(_bomb_member_list(header)), suffix)
    name = f"header.tar{suffix}"
    artifact.members[artifact.position("header.tar.gz")] = Member(name, bomb)
    manifest = artifact.manifest()
    del manifest["header.tar.gz"]
    artifact.set_manifest({**manifest, name: _sha(bomb)})
    raw = artifact.build()
    assert len(raw) < 100 * 1024

    # when
    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(raw))

    # then
    assert (
        str(excinfo.value) == f"{name} is larger than {TEN_MIB} bytes when decompressed"
    )


def test_read_artifact_rejects_bomb_hidden_after_the_header_tar_end(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    # given: a valid header tar followed, inside the same gzip stream, by 11 MiB of zeros
    artifact = Editable(artifact_bytes(GZ))
    bomb = gzip.compress(
        gzip.decompress(artifact["header.tar.gz"].data)
        + b"\x00" * (TEN_MIB + 1024 * 1024)
    )
    artifact.put_document("header.tar.gz", bomb)

    # when
    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(artifact.build()))

    # then
    assert (
        str(excinfo.value)
        == f"header.tar.gz is larger than {TEN_MIB} bytes when decompressed"
    )


def test_read_artifact_rejects_oversized_header_info_document(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    artifact = Editable(artifact_bytes(GZ))
    artifact.set_header_entry("header-info", b" " * (TEN_MIB + 1))

    with pytest.raises(
        ArtifactError, match=re.escape(f"header.tar.gz is larger than {TEN_MIB} bytes")
    ):
        read_artifact(io.BytesIO(artifact.build()))


@pytest.mark.parametrize(
    "error",
    [
        OSError("connection reset"),
        EOFError("cut"),
        ValueError("bad"),
        RecursionError("deep"),
    ],
    ids=["oserror", "eoferror", "valueerror", "recursionerror"],
)
def test_read_artifact_turns_source_stream_failures_into_artifact_error(
    artifact_bytes: Callable[[str], bytes], error: Exception
) -> None:
    class Failing:
        """Delivers the artifact in short reads, then fails like a dropped upload would."""

        def __init__(self, raw: bytes) -> None:
            self._buffer = io.BytesIO(raw)

        def read(self, size: int = -1) -> bytes:
            if self._buffer.tell() > 2048:
                raise error
            return self._buffer.read(min(size, 700))

    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(Failing(artifact_bytes(GZ)))  # type: ignore[arg-type]

    assert str(excinfo.value).endswith(f": {error}")


def _raw_entry(name: str, type_: bytes, payload: bytes) -> bytes:
    """One tar header + data, written by hand so hostile extended headers can be produced."""
    info = tarfile.TarInfo(name)
    info.type = type_
    info.size = len(payload)
    padding = b"\0" * (-len(payload) % tarfile.BLOCKSIZE)
    return info.tobuf(format=tarfile.USTAR_FORMAT) + payload + padding


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n"
    length = len(body) + 1
    while len(f"{length}{body}") != length:
        length += 1
    return f"{length}{body}".encode()


def _with_data_archive(
    artifact_bytes: Callable[[str], bytes], inner_tar: bytes
) -> bytes:
    artifact = Editable(artifact_bytes(GZ))
    artifact.put("data/0000.tar.gz", gzip.compress(inner_tar))
    return artifact.build()


def _entry_then_payload(*entries: bytes) -> bytes:
    payload = PAYLOAD_FILES["payload.txt"]
    return (
        b"".join(entries)
        + _raw_entry("payload.txt", tarfile.REGTYPE, payload)
        + b"\0" * 1024
    )


def test_read_artifact_rejects_gnu_long_name_bomb_without_buffering_it(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    # given: a 64 MiB GNU long-name record that gzip shrinks to ~64 KiB
    long_name = _raw_entry(
        "././@LongLink", tarfile.GNUTYPE_LONGNAME, b"a" * (64 * 1024 * 1024)
    )
    raw = _with_data_archive(artifact_bytes, _entry_then_payload(long_name))
    assert len(raw) < 200 * 1024

    # when
    tracemalloc.start()
    try:
        with pytest.raises(ArtifactError) as excinfo:
            read_artifact(io.BytesIO(raw))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # then
    assert (
        str(excinfo.value)
        == "data/0000.tar.gz: tar extended header larger than 1048576 bytes"
    )
    assert peak < 4 * 1024 * 1024


def test_read_artifact_rejects_chain_of_pax_headers_over_the_budget(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    # given: 12 valid PAX records of ~1 MiB each in front of one file: over 10 MiB in total
    record = _pax_record("comment", "x" * (1024 * 1024 - 100))
    chain = [_raw_entry("././@PaxHeader", tarfile.XHDTYPE, record) for _ in range(12)]
    raw = _with_data_archive(artifact_bytes, _entry_then_payload(*chain))

    # when
    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(raw))

    # then
    assert (
        str(excinfo.value)
        == f"data/0000.tar.gz: tar extended headers larger than {TEN_MIB} bytes"
    )


@pytest.mark.parametrize(
    ("type_", "label"),
    [(tarfile.XGLTYPE, "b'g'"), (tarfile.GNUTYPE_SPARSE, "b'S'")],
    ids=["pax-global-header", "gnu-sparse"],
)
def test_read_artifact_rejects_tar_entry_types_mender_artifact_never_writes(
    artifact_bytes: Callable[[str], bytes], type_: bytes, label: str
) -> None:
    entry = _raw_entry(
        "payload.txt" if type_ == tarfile.GNUTYPE_SPARSE else "g", type_, b""
    )
    raw = _with_data_archive(artifact_bytes, _entry_then_payload(entry))

    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(raw))

    assert str(excinfo.value) == f"data/0000.tar.gz: unsupported tar entry type {label}"


def test_read_artifact_rejects_oversized_extended_header_in_outer_tar() -> None:
    raw = (
        _raw_entry("././@LongLink", tarfile.GNUTYPE_LONGNAME, b"v" * (2 * 1024 * 1024))
        + b"\0" * 1024
    )

    with pytest.raises(ArtifactError) as excinfo:
        read_artifact(io.BytesIO(raw))

    assert (
        str(excinfo.value) == "artifact: tar extended header larger than 1048576 bytes"
    )


def test_read_artifact_accepts_pax_records_within_limits(
    artifact_bytes: Callable[[str], bytes],
) -> None:
    # given: the payload file preceded by a legitimate PAX record (as Go writes for long names)
    record = _pax_record("comment", "written by another tool")
    raw = _with_data_archive(
        artifact_bytes,
        _entry_then_payload(_raw_entry("././@PaxHeader", tarfile.XHDTYPE, record)),
    )
    artifact = Editable(raw)
    artifact.set_manifest(
        {k: v for k, v in artifact.manifest().items() if k != "data/0000/second.bin"}
    )

    # when
    meta = read_artifact(io.BytesIO(artifact.build()))

    # then
    assert [f.name for f in meta.payloads[0].files] == ["payload.txt"]


def _essentials(meta: ArtifactMeta) -> ArtifactMeta:
    """What a corruption must never change unnoticed (tar header dates and padding may change)."""
    payloads = [
        replace(payload, files=[replace(f, date=EPOCH) for f in payload.files])
        for payload in meta.payloads
    ]
    return replace(meta, size=0, payloads=payloads)


@pytest.mark.parametrize(
    "base", [GZ, NONE, "module_xz", "rootfs_v2", AUGMENTED, SIGNED]
)
def test_read_artifact_random_damage_is_rejected_or_harmless(
    artifact_bytes: Callable[[str], bytes], base: str
) -> None:
    raw = artifact_bytes(base)
    original = _essentials(read_artifact(io.BytesIO(raw)))
    rng = random.Random(base)
    for _ in range(300):
        damaged = bytearray(raw)
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 3)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        else:
            start = rng.randrange(len(damaged))
            del damaged[start : start + rng.randint(1, 600)]
        try:
            meta = read_artifact(io.BytesIO(bytes(damaged)))
        except ArtifactError:
            continue
        assert _essentials(meta) == original
