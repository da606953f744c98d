"""Small file-like wrappers that let the reader hash, count and bound bytes while streaming."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import tarfile
from typing import IO, Protocol, Self, cast

from deployments_app.artifact_format.errors import ArtifactError

CHUNK_SIZE = 256 * 1024

# Compression is chosen by file-name suffix only, as in mender-artifact 3.9 (zstd came in 3.10).
COMPRESSION_SUFFIXES = ("", ".gz", ".xz")

# Go's archive/tar refuses PAX and GNU long-name records above 1 MiB; so do we.
MAX_EXTENDED_HEADER_SIZE = 1024 * 1024
_EXTENDED_HEADER_TYPES = (
    tarfile.XHDTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class CountingReader:
    """Counts every byte read from the wrapped stream."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._raw.read(size) or b""
        self.count += len(data)
        return data


class HashingReader:
    """Feeds every byte read from the wrapped stream into sha256."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        data = self._raw.read(size) or b""
        self._hash.update(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class SizeLimitedReader:
    """Raises ArtifactError once more than `limit` bytes have come out of the wrapped stream.

    Put it on the decompressed side: sizes in tar or gzip headers are attacker-controlled.
    """

    def __init__(self, raw: Readable, *, limit: int, what: str) -> None:
        self._raw = raw
        self._limit = limit
        self._what = what
        self._count = 0

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            # "Everything" from a decompressor could be unbounded: hand it out in chunks.
            size = CHUNK_SIZE
        data = self._raw.read(size) or b""
        self._count += len(data)
        if self._count > self._limit:
            raise ArtifactError(
                f"{self._what} is larger than {self._limit} bytes when decompressed"
            )
        return data


def drain(reader: Readable) -> None:
    """Read `reader` to its end, discarding the bytes (they still pass through any wrapper)."""
    while reader.read(CHUNK_SIZE):
        pass


def read_bounded(reader: Readable, *, limit: int, what: str) -> bytes:
    """Read all of `reader`, refusing more than `limit` bytes."""
    parts: list[bytes] = []
    total = 0
    while chunk := reader.read(min(CHUNK_SIZE, limit + 1 - total)):
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise ArtifactError(f"{what} is larger than {limit} bytes")
    return b"".join(parts)


def decompressing_reader(raw: Readable, *, suffix: str) -> Readable:
    """Wrap `raw` in the decompressor that the archive's file-name suffix names."""
    if suffix == ".gz":
        return gzip.GzipFile(fileobj=cast(IO[bytes], raw), mode="rb")
    if suffix == ".xz":
        return lzma.LZMAFile(cast(IO[bytes], raw), mode="rb", format=lzma.FORMAT_XZ)
    return raw


def open_tar_stream(
    reader: Readable, *, what: str, extended_header_budget: int
) -> tarfile.TarFile:
    """Open `reader` as a forward-only tar stream that cannot be made to buffer huge headers.

    tarfile reads every PAX / GNU long-name record whole into memory (a chain of them
    recursively) before it returns the member they describe. In a gzip'd data archive a few KiB
    can expand to gigabytes of such records, so their sizes are checked before tarfile reads
    them: each at most MAX_EXTENDED_HEADER_SIZE, all of one archive at most
    `extended_header_budget`. Global PAX headers and GNU sparse files are refused outright;
    mender-artifact never writes them.
    """
    remaining = extended_header_budget

    class GuardedTarInfo(tarfile.TarInfo):
        # tarfile's private, long-stable (3.0 to 3.13) dispatch on the entry type.
        def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
            nonlocal remaining
            if self.type in (tarfile.XGLTYPE, tarfile.GNUTYPE_SPARSE):
                raise ArtifactError(f"{what}: unsupported tar entry type {self.type!r}")
            if self.type in _EXTENDED_HEADER_TYPES:
                if self.size > MAX_EXTENDED_HEADER_SIZE:
                    raise ArtifactError(
                        f"{what}: tar extended header larger than {MAX_EXTENDED_HEADER_SIZE} bytes"
                    )
                remaining -= self.size
                if remaining < 0:
                    raise ArtifactError(
                        f"{what}: tar extended headers larger than {extended_header_budget} bytes"
                    )
            return super()._proc_member(tar)  # type: ignore[misc]

        @classmethod
        def fromtarfile(cls, tar: tarfile.TarFile) -> Self:
            # tarfile takes a corrupt or cut-off header after the first member for the end of
            # the archive, and one zero block for the end; Go's archive/tar (mender-artifact,
            # the client) refuses both, and wants the zero block followed by another or by EOF.
            try:
                return super().fromtarfile(tar)
            # tarfile's header exceptions are internal, absent from typeshed's tarfile stub.
            except tarfile.EOFHeaderError:  # type: ignore[attr-defined]
                following = tar.fileobj.read(tarfile.BLOCKSIZE)  # type: ignore[union-attr]
                if 0 < len(following) < tarfile.BLOCKSIZE:
                    raise ArtifactError(
                        f"{what} is truncated inside the end-of-archive blocks"
                    ) from None
                if following and following != tarfile.NUL * tarfile.BLOCKSIZE:
                    raise ArtifactError(
                        f"{what}: invalid tar header after an end-of-archive block"
                    ) from None
                raise
            except tarfile.TruncatedHeaderError:  # type: ignore[attr-defined]
                if tar.offset == 0:
                    raise  # tarfile's own "not a tar archive" answer
                raise ArtifactError(
                    f"{what} is truncated inside a tar header"
                ) from None
            except tarfile.InvalidHeaderError as exc:  # type: ignore[attr-defined]
                if tar.offset == 0:
                    raise
                raise ArtifactError(f"{what}: invalid tar header ({exc})") from None

    return tarfile.open(
        fileobj=cast(IO[bytes], reader), mode="r|", tarinfo=GuardedTarInfo
    )
