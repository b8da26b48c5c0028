"""A layer reads the same whatever it was stored with: plain tar, gzip or zstd (a zstd line's
BuildKit build keeps zstd blobs, and ``docker save`` on the containerd store hands them out
as stored; tarfile alone read such a layer as empty)."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
import zstandard

from dlbase.core import layerstream


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


FILES = {"var/lib/dpkg/status": b"Package: apt\n" * 500, "opt/x": bytes(range(256)) * 100}
ENCODED = {
    "none": lambda b: b,
    "gzip": gzip.compress,
    "zstd": lambda b: zstandard.ZstdCompressor(level=3).compress(b),
}


class _OneWay(io.RawIOBase):
    """A stream that cannot seek, handing out a few bytes per read, as a tar member does."""

    def __init__(self, data: bytes):
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._src.read(7 if n is None or n < 0 else min(n, 7))


@pytest.mark.parametrize("encoding", sorted(ENCODED))
def test_every_encoding_reads_as_the_same_tar(encoding: str) -> None:
    blob = ENCODED[encoding](_tar(FILES))
    assert layerstream.encoding_of(blob[:4]) == encoding
    with tarfile.open(fileobj=layerstream.plain(_OneWay(blob)), mode="r|") as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    assert got == FILES


def test_a_zstd_layer_was_empty_to_tarfile_alone() -> None:
    """What the layer report did before: the zstd stream is no tar tarfile can open."""
    blob = ENCODED["zstd"](_tar(FILES))
    with pytest.raises(tarfile.ReadError):
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r|*") as tar:
            list(tar)
