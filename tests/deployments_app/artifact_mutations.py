"""Mutated copies of real artifacts: the corpus the server's parser is compared on with
``mender-artifact validate`` (truncations, bit flips in tar headers, random bytes in the data
and header archives, garbage signatures, member-level rewrites)."""

from __future__ import annotations

import base64
import io
import random
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BLOCK = 512


@dataclass(frozen=True)
class Mutant:
    """One mutated artifact and how it was made."""

    name: str
    content: bytes


@dataclass(frozen=True)
class _Member:
    name: str
    header_offset: int
    data_offset: int
    size: int
    data: bytes


def _members(content: bytes) -> list[_Member]:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as archive:
        found = []
        for info in archive:
            extracted = archive.extractfile(info)
            found.append(
                _Member(
                    name=info.name,
                    header_offset=info.offset,
                    data_offset=info.offset_data,
                    size=info.size,
                    data=extracted.read() if extracted else b"",
                )
            )
    return found


def _end_of_members(content: bytes) -> int:
    last = _members(content)[-1]
    return last.data_offset + -(-last.size // BLOCK) * BLOCK


def _flip(content: bytes, offset: int, bit: int) -> bytes:
    mutated = bytearray(content)
    mutated[offset] ^= 1 << bit
    return bytes(mutated)


def _overwrite(content: bytes, offset: int, data: bytes) -> bytes:
    return content[:offset] + data + content[offset + len(data) :]


def _rewrite(
    content: bytes, change: Callable[[list[_Member]], list[tuple[str, bytes]]]
) -> bytes:
    """Re-pack the outer tar (as mender-artifact does: ustar) with changed members."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in change(_members(content)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _pairs(members: list[_Member]) -> list[tuple[str, bytes]]:
    return [(m.name, m.data) for m in members]


def mutants(
    label: str, content: bytes, *, seed: int, per_kind: int = 6
) -> Iterator[Mutant]:
    """Deterministic mutants of one artifact (``per_kind`` random picks per kind)."""
    rng = random.Random(seed)
    members = _members(content)
    end = _end_of_members(content)
    by_name = {m.name: m for m in members}

    # truncations: at member boundaries, inside headers and data, in the end-of-archive blocks
    cuts = {len(content) - 1, end, end + BLOCK, len(content) - BLOCK}
    for m in members:
        cuts |= {
            m.header_offset,
            m.header_offset + 100,
            m.data_offset,
            m.data_offset + m.size // 2,
        }
    cuts |= {rng.randrange(1, len(content)) for _ in range(per_kind)}
    for cut in sorted(c for c in cuts if 0 < c < len(content)):
        yield Mutant(f"{label}/truncated-at-{cut}", content[:cut])

    # bit flips inside the outer tar headers (name, size, checksum, magic, ...)
    for m in members:
        for _ in range(max(1, per_kind // 2)):
            offset = m.header_offset + rng.randrange(BLOCK)
            yield Mutant(
                f"{label}/outer-header-flip-{m.name}-{offset}",
                _flip(content, offset, rng.randrange(8)),
            )
    # ... and in the end-of-archive blocks
    for _ in range(2):
        offset = rng.randrange(end, len(content))
        yield Mutant(
            f"{label}/end-block-flip-{offset}", _flip(content, offset, rng.randrange(8))
        )

    # bit flips inside the headers of an uncompressed inner tar (header.tar, data/NNNN.tar)
    for m in members:
        if m.name.endswith(".tar"):
            for inner in _members(m.data):
                for _ in range(max(1, per_kind // 2)):
                    offset = m.data_offset + inner.header_offset + rng.randrange(BLOCK)
                    yield Mutant(
                        f"{label}/inner-header-flip-{m.name}:{inner.name}-{offset}",
                        _flip(content, offset, rng.randrange(8)),
                    )

    # random bytes inside the data and header archives (compressed or not)
    for m in members:
        if not (m.name.startswith("data/") or m.name.startswith("header")):
            continue
        for _ in range(per_kind):
            length = rng.choice((1, 16, 512))
            offset = m.data_offset + rng.randrange(max(1, m.size - length))
            yield Mutant(
                f"{label}/random-bytes-{m.name}-{offset}+{length}",
                _overwrite(content, offset, rng.randbytes(length)),
            )

    # single bit flips in the small documents (version, manifest)
    for name in ("version", "manifest"):
        m = by_name[name]
        for _ in range(2):
            offset = m.data_offset + rng.randrange(m.size)
            yield Mutant(
                f"{label}/flip-{name}-{offset}",
                _flip(content, offset, rng.randrange(8)),
            )

    # garbage manifest.sig (added after the manifest, or replacing the real one)
    garbage_signatures = {
        "random-bytes": rng.randbytes(96),
        "empty": b"",
        "base64-short": base64.b64encode(rng.randbytes(10)),
        "base64-odd": base64.b64encode(rng.randbytes(63)),
        "not-base64": b"this is not a signature!",
        # well-formed (an ECDSA P-256 length) but signed by nobody: only a key can tell
        "wrong-signature": base64.b64encode(rng.randbytes(64)),
    }
    for kind, signature in garbage_signatures.items():

        def with_signature(
            ms: list[_Member], signature: bytes = signature
        ) -> list[tuple[str, bytes]]:
            pairs = [p for p in _pairs(ms) if p[0] != "manifest.sig"]
            at = [n for n, _ in pairs].index("manifest") + 1
            return [*pairs[:at], ("manifest.sig", signature), *pairs[at:]]

        yield Mutant(f"{label}/manifest-sig-{kind}", _rewrite(content, with_signature))

    # member-level rewrites
    names = [m.name for m in members]
    for name in names:

        def without(ms: list[_Member], name: str = name) -> list[tuple[str, bytes]]:
            return [p for p in _pairs(ms) if p[0] != name]

        yield Mutant(f"{label}/without-{name}", _rewrite(content, without))
    yield Mutant(
        f"{label}/duplicate-last-member",
        _rewrite(content, lambda ms: [*_pairs(ms), _pairs(ms)[-1]]),
    )
    yield Mutant(f"{label}/garbage-after-end", content + rng.randbytes(3 * BLOCK))
    yield Mutant(
        f"{label}/one-end-block-then-garbage",
        content[: end + BLOCK] + rng.randbytes(BLOCK),
    )
    yield Mutant(f"{label}/no-end-blocks", content[:end])
    yield Mutant(
        f"{label}/zeroed-data",
        _overwrite(
            content, members[-1].data_offset, bytes(min(BLOCK, members[-1].size))
        ),
    )
