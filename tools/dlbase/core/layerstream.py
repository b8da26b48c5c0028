"""A layer blob as a plain tar stream, whatever it is compressed with.

Why a module of its own: on Docker 26's containerd store, ``docker save`` hands out the
layers as they are stored, so a layer is plain tar, gzip, or zstd (a zstd line's BuildKit
build). Python's ``tarfile`` reads the first two and not zstd, and a reader that assumed
gzip saw a zstd layer as empty (``dlbase layers`` counted no packages, ``rebuild-check``
named no file). Every reader of layer contents (the layer report, the layer diff) and the
push's re-compression tell the encoding from the same magic bytes, named here once.
"""

from __future__ import annotations

import gzip
from typing import IO

GZIP, ZSTD, PLAIN = "gzip", "zstd", "none"
MAGIC = {b"\x1f\x8b": GZIP, b"\x28\xb5\x2f\xfd": ZSTD}
_HEAD = max(len(m) for m in MAGIC)


def encoding_of(head: bytes) -> str:
    """The encoding the first bytes of a blob announce (``none``: plain, as tar is)."""
    return next((enc for magic, enc in MAGIC.items() if head.startswith(magic)), PLAIN)


def decoder(encoding: str, src: IO[bytes]) -> IO[bytes]:
    """``src`` (a stream of ``encoding``) decompressed, as a stream."""
    if encoding == GZIP:
        return gzip.GzipFile(fileobj=src, mode="rb")  # type: ignore[return-value]
    if encoding == ZSTD:
        import zstandard  # only zstd layers need it

        return zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)  # type: ignore[return-value]
    return src


class _Replayed:
    """``src`` with the bytes already read from its start put back in front (streams from a
    ``docker save`` tar cannot seek back)."""

    def __init__(self, head: bytes, src: IO[bytes]):
        self._head, self._src = head, src

    def read(self, n: int = -1) -> bytes:
        if self._head:
            out = self._head if n is None or n < 0 else self._head[:n]
            self._head = self._head[len(out):]
            if n is None or n < 0:
                return out + self._src.read()
            return out
        return self._src.read(n)


def plain(src: IO[bytes]) -> IO[bytes]:
    """The layer ``src`` (plain tar, gzip or zstd, told by its magic bytes) as plain tar."""
    head = src.read(_HEAD)
    return decoder(encoding_of(head), _Replayed(head, src))  # type: ignore[arg-type]
