"""Streaming reader for Mender artifacts, format v3 and v2 (mender-compat.md §4).

The outer file is read once, front to back, through tarfile's stream mode: nothing is seeked
and nothing larger than a header document is held in memory. Payload files are hashed chunk by
chunk while they stream past.
"""

from __future__ import annotations

import hashlib
import lzma
import re
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO

from deployments_app.artifact_format import documents
from deployments_app.artifact_format.depends import depends_combinations
from deployments_app.artifact_format.documents import HeaderInfo, TypeInfo
from deployments_app.artifact_format.errors import ArtifactError
from deployments_app.artifact_format.records import ArtifactMeta, Payload, PayloadFile
from deployments_app.artifact_format.streams import (
    CHUNK_SIZE,
    COMPRESSION_SUFFIXES,
    CountingReader,
    HashingReader,
    Readable,
    SizeLimitedReader,
    decompressing_reader,
    drain,
    open_tar_stream,
    read_bounded,
)

DEFAULT_MAX_HEADER_SIZE = 10 * 1024 * 1024

_HEADER_SUFFIXES = {f"header.tar{suffix}": suffix for suffix in COMPRESSION_SUFFIXES}
_DATA_ARCHIVE = re.compile(r"data/([0-9]{4})\.tar(\.gz|\.xz)?")
_HEADER_ENTRY = re.compile(r"headers/([0-9]{4})/(.+)")
_MANIFEST_DATA_PATH = re.compile(r"data/([0-9]{4})/([^/]+)")
# mender-artifact only accepts flat payload file names made of these characters.
_DATA_FILE_NAME = re.compile(r"[A-Za-z0-9_.,-]+")
# Per-payload header entries of v2 artifacts that mender-artifact reads past without using.
_V2_IGNORED_PREFIXES = ("signatures/", "scripts/", "checksums/")
_REGULAR_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE)

# What tarfile, gzip, lzma, json and the source stream raise on malformed or cut-off input.
# ArtifactError is a ValueError too; _reading re-raises it untouched before consulting this.
_LOW_LEVEL_ERRORS = (
    tarfile.TarError,
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
    OverflowError,
    RecursionError,
)


def read_artifact(
    stream: BinaryIO, *, max_header_size: int = DEFAULT_MAX_HEADER_SIZE
) -> ArtifactMeta:
    """Parse and fully verify a Mender artifact from a binary stream, reading it exactly once.

    Raises ArtifactError (message suitable for a 400 response) for anything malformed,
    truncated, tampered with or unsupported. `max_header_size` bounds the decompressed header archive and
    each small document (version, manifests) against decompression bombs.
    """
    counter = CountingReader(stream)
    with _reading("cannot read artifact"):
        return _ArtifactParser(counter, max_header_size=max_header_size).parse()


@contextmanager
def _reading(what: str) -> Iterator[None]:
    try:
        yield
    except ArtifactError:
        raise
    except _LOW_LEVEL_ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        raise ArtifactError(f"{what}: {reason}") from exc


@dataclass
class _Bucket:
    """What one `headers/NNNN/` directory of a header archive holds."""

    type_info: TypeInfo | None = None
    meta_data: dict[str, Any] | None = None
    has_meta_data: bool = False
    files: list[str] | None = None  # v2 only


@dataclass
class _Header:
    info: HeaderInfo
    buckets: dict[int, _Bucket] = field(default_factory=dict)


class _ArtifactParser:
    """One pass over one artifact; holds the manifest state shared by all members."""

    def __init__(self, counter: CountingReader, *, max_header_size: int) -> None:
        self._counter = counter
        self._max_header_size = max_header_size
        # manifest and manifest-augment share one table, as in mender-artifact.
        self._checksums: dict[str, str] = {}
        self._seen: set[str] = set()

    def parse(self) -> ArtifactMeta:
        with ExitStack() as stack:
            with _reading(
                "not a Mender artifact (expected an uncompressed tar archive)"
            ):
                outer = stack.enter_context(
                    self._open_tar(self._counter, what="artifact")
                )
            meta = self._parse_members(outer)
        # Bytes after the end-of-archive blocks still belong to the upload: count them.
        drain(self._counter)
        return replace(meta, size=self._counter.count)

    def _parse_members(self, outer: tarfile.TarFile) -> ArtifactMeta:
        version = self._read_version_and_manifest(outer)
        signed, has_augment, header_member = self._read_optional_manifests(
            outer, version=version
        )
        suffix = _HEADER_SUFFIXES[header_member.name]
        header = self._read_header_archive(
            outer, header_member, suffix=suffix, version=version, augment=False
        )
        augment: _Header | None = None
        if has_augment:
            augment_member = self._expect_next(
                outer, f"header-augment.tar{suffix}", after=header_member.name
            )
            augment = self._read_header_archive(
                outer, augment_member, suffix=suffix, version=3, augment=True
            )
            _check_augment_fits(header, augment)

        files = self._read_data_archives(outer, header)

        missing = sorted(set(self._checksums) - self._seen)
        if missing:
            raise ArtifactError(
                "files listed in the manifest are missing from the artifact: "
                + ", ".join(missing)
            )
        if version == 2:
            return _assemble_v2(header, files, signed=signed)
        return _assemble_v3(header, augment, files, signed=signed)

    def _read_version_and_manifest(self, outer: tarfile.TarFile) -> int:
        version_raw = self._read_document(
            outer, self._expect_next(outer, "version", after=None)
        )
        version = documents.parse_version(version_raw).version
        manifest_raw = self._read_document(
            outer, self._expect_next(outer, "manifest", after="version")
        )
        self._add_manifest(documents.parse_manifest(manifest_raw, what="manifest"))
        self._verify("version", hashlib.sha256(version_raw).hexdigest())
        return version

    def _read_optional_manifests(
        self, outer: tarfile.TarFile, *, version: int
    ) -> tuple[bool, bool, tarfile.TarInfo]:
        """Consume manifest.sig and manifest-augment if present; return the header member."""
        member = self._next(outer)
        signed = member is not None and member.name == "manifest.sig"
        if signed:
            # The server checks the signature's form only; devices verify it with their key.
            assert member is not None
            documents.check_manifest_signature(self._read_document(outer, member))
            member = self._next(outer)
        has_augment = (
            version == 3 and member is not None and member.name == "manifest-augment"
        )
        if has_augment:
            assert member is not None
            manifest_raw = self._read_document(outer, member)
            self._add_manifest(
                documents.parse_manifest(manifest_raw, what="manifest-augment")
            )
            member = self._next(outer)
        if member is None:
            raise ArtifactError("artifact is incomplete: the header archive is missing")
        if member.name not in _HEADER_SUFFIXES:
            raise ArtifactError(
                f"wrong artifact structure: unexpected member {member.name!r} "
                "(expected manifest.sig, manifest-augment or header.tar[.gz|.xz])"
            )
        return signed, has_augment, member

    def _read_data_archives(
        self, outer: tarfile.TarFile, header: _Header
    ) -> list[list[PayloadFile]]:
        payload_count = len(header.info.payload_types)
        self._check_manifest_data_paths(payload_count)
        files: list[list[PayloadFile]] = [[] for _ in range(payload_count)]
        last_index = -1
        while (member := self._next(outer)) is not None:
            match = _DATA_ARCHIVE.fullmatch(member.name)
            if match is None:
                raise ArtifactError(
                    f"wrong artifact structure: unexpected member {member.name!r} "
                    "after the header (only data/NNNN.tar[.gz|.xz] may follow)"
                )
            index = int(match[1])
            if index >= payload_count:
                raise ArtifactError(
                    f"{member.name} has no matching payload in header-info"
                )
            if index <= last_index:
                raise ArtifactError(
                    f"wrong artifact structure: {member.name} is out of order or repeated"
                )
            last_index = index
            bucket = header.buckets.get(index)
            files[index] = self._read_data_archive(
                outer,
                member,
                index=index,
                suffix=match[2] or "",
                allowed_names=bucket.files if bucket is not None else None,
            )
        return files

    # -- outer members --

    def _open_tar(self, reader: Readable, *, what: str) -> tarfile.TarFile:
        return open_tar_stream(
            reader, what=what, extended_header_budget=self._max_header_size
        )

    def _next(self, outer: tarfile.TarFile) -> tarfile.TarInfo | None:
        with _reading("artifact is truncated or not a valid tar archive"):
            member = outer.next()
        if member is None:
            return None
        _check_member_name(member.name, what="artifact")
        if member.type not in _REGULAR_FILE_TYPES:
            raise ArtifactError(
                f"artifact member {member.name!r} is not a regular file"
            )
        return member

    def _expect_next(
        self, outer: tarfile.TarFile, name: str, *, after: str | None
    ) -> tarfile.TarInfo:
        member = self._next(outer)
        if member is None:
            raise ArtifactError(f"artifact is incomplete: {name} is missing")
        if member.name != name:
            position = "first" if after is None else f"after {after}"
            raise ArtifactError(
                f"wrong artifact structure: expected {name} {position}, found {member.name!r}"
            )
        return member

    def _read_document(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
        what = member.name
        if member.size > self._max_header_size:
            raise ArtifactError(f"{what} is larger than {self._max_header_size} bytes")
        with _reading(f"cannot read {what}"):
            fileobj = tar.extractfile(member)
            assert fileobj is not None  # regular files always have one
            return read_bounded(fileobj, limit=self._max_header_size, what=what)

    def _add_manifest(self, entries: dict[str, str]) -> None:
        for path, checksum in entries.items():
            _check_member_name(path, what="manifest")
            if path in self._checksums:
                raise ArtifactError(f"manifest: {path} is listed twice")
            self._checksums[path] = checksum

    def _verify(self, path: str, actual: str) -> None:
        expected = self._checksums.get(path)
        if expected is None:
            raise ArtifactError(f"{path} is not listed in the manifest")
        if path in self._seen:
            raise ArtifactError(f"{path} occurs twice in the artifact")
        if actual != expected:
            raise ArtifactError(
                f"invalid checksum for {path}: expected {expected}, got {actual}"
            )
        self._seen.add(path)

    def _check_manifest_data_paths(self, payload_count: int) -> None:
        for path in self._checksums:
            if not path.startswith("data/"):
                continue
            match = _MANIFEST_DATA_PATH.fullmatch(path)
            if match is None:
                raise ArtifactError(f"manifest: malformed data entry {path!r}")
            if int(match[1]) >= payload_count:
                raise ArtifactError(f"manifest: {path} does not belong to any payload")

    # -- header archive --

    def _read_header_archive(
        self,
        outer: tarfile.TarFile,
        member: tarfile.TarInfo,
        *,
        suffix: str,
        version: int,
        augment: bool,
    ) -> _Header:
        fileobj = outer.extractfile(member)
        assert fileobj is not None
        raw = HashingReader(fileobj)
        with _reading(f"invalid {member.name}"):
            decompressed = SizeLimitedReader(
                decompressing_reader(raw, suffix=suffix),
                limit=self._max_header_size,
                what=member.name,
            )
            with self._open_tar(decompressed, what=member.name) as inner:
                header = _HeaderReader(
                    inner,
                    archive=member.name,
                    version=version,
                    augment=augment,
                    max_size=self._max_header_size,
                ).read()
            # Whatever follows the inner tar's end must also decompress cleanly and within
            # the limit, and the checksum covers every compressed byte.
            drain(decompressed)
            drain(raw)
        self._verify(member.name, raw.hexdigest())
        return header

    # -- data archives --

    def _read_data_archive(
        self,
        outer: tarfile.TarFile,
        member: tarfile.TarInfo,
        *,
        index: int,
        suffix: str,
        allowed_names: list[str] | None,
    ) -> list[PayloadFile]:
        fileobj = outer.extractfile(member)
        assert fileobj is not None
        files: list[PayloadFile] = []
        with _reading(f"invalid {member.name}"):
            decompressed = decompressing_reader(fileobj, suffix=suffix)
            with self._open_tar(decompressed, what=member.name) as inner:
                for entry in inner:
                    files.append(
                        self._read_data_file(
                            inner,
                            entry,
                            archive=member.name,
                            index=index,
                            allowed_names=allowed_names,
                        )
                    )
        return files

    def _read_data_file(
        self,
        inner: tarfile.TarFile,
        entry: tarfile.TarInfo,
        *,
        archive: str,
        index: int,
        allowed_names: list[str] | None,
    ) -> PayloadFile:
        _check_member_name(entry.name, what=archive)
        if entry.type not in _REGULAR_FILE_TYPES:
            raise ArtifactError(f"{archive}: {entry.name!r} is not a regular file")
        if not _DATA_FILE_NAME.fullmatch(entry.name) or entry.name in {".", ".."}:
            raise ArtifactError(
                f"{archive}: payload file name {entry.name!r} is not allowed "
                "(only letters, digits and '.,_-', no directories)"
            )
        path = f"data/{index:04d}/{entry.name}"
        if path not in self._checksums:
            raise ArtifactError(f"{path} is not listed in the manifest")
        if allowed_names is not None and entry.name not in allowed_names:
            raise ArtifactError(f"{path} is not listed in headers/{index:04d}/files")
        fileobj = inner.extractfile(entry)
        assert fileobj is not None
        digest = hashlib.sha256()
        size = 0
        while chunk := fileobj.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
        self._verify(path, digest.hexdigest())
        return PayloadFile(
            name=entry.name,
            size=size,
            checksum=digest.hexdigest(),
            date=_mtime(entry, path),
        )


class _HeaderReader:
    """Walks one (decompressed) header archive: header-info, scripts/*, then headers/NNNN/*."""

    def __init__(
        self,
        tar: tarfile.TarFile,
        *,
        archive: str,
        version: int,
        augment: bool,
        max_size: int,
    ) -> None:
        self._tar = tar
        self._archive = archive
        self._version = version
        self._augment = augment
        self._max_size = max_size

    def read(self) -> _Header:
        entry = self._next()
        if entry is None or entry.name != "header-info":
            found = "nothing" if entry is None else repr(entry.name)
            raise ArtifactError(
                f"{self._archive}: header-info must come first, found {found}"
            )
        raw = self._read(entry)
        if self._version == 2:
            info = documents.parse_header_info_v2(raw)
        else:
            info = documents.parse_header_info_v3(raw, augment=self._augment)
        header = _Header(info=info)

        entry = self._next()
        # State scripts run on the device only; the server accepts and ignores them.
        while (
            entry is not None
            and entry.name.startswith("scripts/")
            and not self._augment
        ):
            if entry.name.count("/") != 1:
                raise ArtifactError(f"{self._archive}: unexpected entry {entry.name!r}")
            entry = self._next()

        current = -1
        while entry is not None:
            match = _HEADER_ENTRY.fullmatch(entry.name)
            if match is None:
                raise ArtifactError(f"{self._archive}: unexpected entry {entry.name!r}")
            index, name = int(match[1]), match[2]
            self._check_payload_index(info, index, entry.name)
            if index < current:
                raise ArtifactError(f"{self._archive}: {entry.name} is out of order")
            if index > current:
                current = index
                header.buckets[index] = _Bucket()
            self._read_bucket_entry(header.buckets[index], entry, name)
            entry = self._next()

        if self._version == 3:
            expected = [
                index
                for index, payload_type in enumerate(info.payload_types)
                if not self._augment
                or payload_type  # augment entries with type "" override nothing
            ]
            for index in expected:
                bucket = header.buckets.get(index)
                if bucket is None or bucket.type_info is None:
                    raise ArtifactError(
                        f"{self._archive}: headers/{index:04d}/type-info is missing"
                    )
        return header

    def _check_payload_index(self, info: HeaderInfo, index: int, name: str) -> None:
        if index >= len(info.payload_types):
            raise ArtifactError(
                f"{self._archive}: {name} has no matching payload in header-info"
            )
        if self._augment and not info.payload_types[index]:
            raise ArtifactError(
                f"{self._archive}: {name} belongs to a payload that is not augmented"
            )

    def _read_bucket_entry(
        self, bucket: _Bucket, entry: tarfile.TarInfo, name: str
    ) -> None:
        what = f"{self._archive}: {entry.name}"
        if self._version == 2:
            if name.startswith(_V2_IGNORED_PREFIXES):
                return
            if name == "files" and bucket.files is None:
                bucket.files = documents.parse_files_v2(self._read(entry), what=what)
                return
            if name == "type-info" and bucket.type_info is None:
                # mender-artifact ignores v2 type-info contents; only note that it was there.
                bucket.type_info = TypeInfo(
                    type=None, provides={}, depends={}, clears=None
                )
                return
        if name == "type-info":
            if bucket.type_info is not None or bucket.has_meta_data:
                raise ArtifactError(
                    f"{what} must be the first and only type-info of its payload"
                )
            bucket.type_info = documents.parse_type_info(self._read(entry), what=what)
            return
        if name == "meta-data" and not bucket.has_meta_data:
            if self._version == 3 and bucket.type_info is None:
                raise ArtifactError(f"{what} must follow the payload's type-info")
            bucket.meta_data = documents.parse_meta_data(self._read(entry), what=what)
            bucket.has_meta_data = True
            return
        raise ArtifactError(f"{self._archive}: unexpected entry {entry.name!r}")

    def _next(self) -> tarfile.TarInfo | None:
        while (entry := self._tar.next()) is not None:
            _check_member_name(entry.name, what=self._archive)
            if entry.isdir():
                continue  # other tools than mender-artifact may add them; they carry nothing
            if entry.type not in _REGULAR_FILE_TYPES:
                raise ArtifactError(
                    f"{self._archive}: {entry.name!r} is not a regular file"
                )
            return entry
        return None

    def _read(self, entry: tarfile.TarInfo) -> bytes:
        fileobj = self._tar.extractfile(entry)
        assert fileobj is not None
        return read_bounded(
            fileobj, limit=self._max_size, what=f"{self._archive}: {entry.name}"
        )


def _check_member_name(name: str, *, what: str) -> None:
    if (
        not name
        or name.startswith("/")
        or ".." in name.split("/")
        or "\\" in name
        or "\x00" in name
    ):
        raise ArtifactError(f"{what}: unsafe member name {name!r}")


def _check_augment_fits(header: _Header, augment: _Header) -> None:
    if len(augment.info.payload_types) > len(header.info.payload_types):
        raise ArtifactError("header-augment: more payloads than the original header")
    for index, augment_type in enumerate(augment.info.payload_types):
        if augment_type and header.info.payload_types[index] is None:
            raise ArtifactError("header-augment: an empty payload cannot be augmented")


def _mtime(entry: tarfile.TarInfo, path: str) -> datetime:
    try:
        return datetime.fromtimestamp(entry.mtime, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ArtifactError(f"{path}: modification time out of range") from None


def _assemble_v2(
    header: _Header, files: list[list[PayloadFile]], *, signed: bool
) -> ArtifactMeta:
    info = header.info
    payloads = [
        Payload(
            type=payload_type,
            meta_data=header.buckets[index].meta_data
            if index in header.buckets
            else None,
            files=files[index],
        )
        for index, payload_type in enumerate(info.payload_types)
    ]
    return ArtifactMeta(
        name=info.artifact_name,
        format="mender",
        version=2,
        device_types_compatible=list(info.device_types),
        # v2 has no provides; report none (as Mender's server does) rather than invent them.
        provides={},
        depends={"device_type": list(info.device_types)},
        clears=[],
        payloads=payloads,
        signed=signed,
        size=0,
    )


def _assemble_v3(
    header: _Header,
    augment: _Header | None,
    files: list[list[PayloadFile]],
    *,
    signed: bool,
) -> ArtifactMeta:
    info = header.info
    payloads: list[Payload] = []
    for index, payload_type in enumerate(info.payload_types):
        type_info = header.buckets[index].type_info
        assert type_info is not None  # checked while reading the header
        if (
            type_info.type
            and payload_type is not None
            and type_info.type != payload_type
        ):
            raise ArtifactError(
                f"headers/{index:04d}/type-info: type {type_info.type!r} does not match "
                f"header-info payload type {payload_type!r}"
            )
        final_type = payload_type
        provides = dict(type_info.provides)
        depends = {
            key: _copy_depends_value(value) for key, value in type_info.depends.items()
        }
        clears = list(type_info.clears or [])
        meta_data = header.buckets[index].meta_data
        augment_bucket = augment.buckets.get(index) if augment is not None else None
        if augment is not None and augment_bucket is not None:
            augment_info = augment_bucket.type_info
            assert augment_info is not None
            final_type = augment.info.payload_types[index] or payload_type
            provides.update(augment_info.provides)
            depends = _merge_depends(depends, augment_info.depends, index=index)
            if augment_info.clears is not None:
                clears = list(augment_info.clears)
            if augment_bucket.meta_data is not None:
                meta_data = _merge_json(
                    meta_data or {},
                    augment_bucket.meta_data,
                    where=f"payload {index} meta-data",
                )
        payloads.append(
            Payload(
                type=final_type,
                provides=provides,
                depends=depends,
                clears=clears,
                meta_data=meta_data,
                files=files[index],
            )
        )

    merged_provides: dict[str, str] = {"artifact_name": info.artifact_name}
    if info.artifact_group:
        merged_provides["artifact_group"] = info.artifact_group
    merged_depends: dict[str, str | list[str]] = {
        "device_type": list(info.device_types)
    }
    if info.depends_artifact_name:
        merged_depends["artifact_name"] = list(info.depends_artifact_name)
    if info.depends_artifact_group:
        merged_depends["artifact_group"] = list(info.depends_artifact_group)
    for payload in payloads:
        for key, value in payload.provides.items():
            if key in merged_provides:
                raise ArtifactError(
                    f"conflicting artifact provides: {key!r} is set more than once"
                )
            merged_provides[key] = value
        for key, depends_value in payload.depends.items():
            if key in merged_depends:
                raise ArtifactError(
                    f"conflicting artifact depends: {key!r} is set more than once"
                )
            merged_depends[key] = _copy_depends_value(depends_value)
    merged_depends["device_type"] = list(info.device_types)
    # Reject now what the uniqueness index could not store later.
    depends_combinations(merged_depends)

    return ArtifactMeta(
        name=info.artifact_name,
        format="mender",
        version=3,
        device_types_compatible=list(info.device_types),
        provides=merged_provides,
        depends=merged_depends,
        clears=list(
            dict.fromkeys(pattern for payload in payloads for pattern in payload.clears)
        ),
        payloads=payloads,
        signed=signed,
        size=0,
    )


def _copy_depends_value(value: str | list[str]) -> str | list[str]:
    return list(value) if isinstance(value, list) else value


def _merge_depends(
    original: dict[str, str | list[str]],
    override: dict[str, str | list[str]],
    *,
    index: int,
) -> dict[str, str | list[str]]:
    merged = dict(original)
    for key, value in override.items():
        if key in merged and isinstance(merged[key], list) != isinstance(value, list):
            raise ArtifactError(
                f"payload {index}: augment depends {key!r} conflicts with the original's type"
            )
        merged[key] = _copy_depends_value(value)
    return merged


def _merge_json(
    original: dict[str, Any], override: dict[str, Any], *, where: str
) -> dict[str, Any]:
    """Overlay augment meta-data on the original: objects merge, type changes are refused."""
    merged = dict(original)
    for key, value in override.items():
        if key not in merged:
            merged[key] = value
            continue
        current = merged[key]
        if isinstance(value, dict) or isinstance(current, dict):
            if not (isinstance(value, dict) and isinstance(current, dict)):
                raise ArtifactError(
                    f"{where}: {key!r} cannot combine an object with a non-object"
                )
            merged[key] = _merge_json(current, value, where=f"{where}.{key}")
        elif isinstance(value, list) != isinstance(current, list):
            raise ArtifactError(
                f"{where}: {key!r} cannot combine a list with a non-list"
            )
        else:
            merged[key] = value
    return merged
