"""Layer compression for `dlbase push --compression`: the media types, re-encoding one
layer to the other format, and the OCI manifest that names the re-encoded layers.

An image is pushed as it was built (its own blobs: the registry digest is the image ID).
Converting is for the other format only: a zstd image asked for as gzip (a team on Docker
20.10), a gzip image asked for as zstd. Only the layers' *encoding* changes: the config,
and with it the ``diff_ids`` (digests of the uncompressed tars) and the image's identity
in a daemon, stays byte for byte the same. Re-encoding checks that: the uncompressed bytes
of every layer must hash to its ``diff_id``.

Both encoders use every core while the layer streams past, and both give the same bytes
for the same input on any machine with the same library: libzstd's multi-threaded mode
does not depend on the thread count (>= 1); gzip is written as pigz does, in fixed
:data:`GZIP_PIECE` pieces deflated independently on a thread pool (zlib releases the GIL)
and joined into one member, so the pieces' boundaries, not the pool, decide the output.
The same image and level give the same manifest digest on every push, and a second push
finds every blob already there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Callable

from dlbase.core import layerstream
from dlbase.core.errors import ImageMismatch
from dlbase.core.layercompression import CHOICES, GZIP, ZSTD
from dlbase.registry.mediatypes import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, OCI_CONFIG, OCI_LAYER,
                                       OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST)

__all__ = ["CHOICES", "GZIP", "ZSTD"]  # re-exported: the names of core.layercompression
#: libzstd level (python-zstandard, when converting): 3 (its default) already beats gzip's
#: size on these images; higher levels cost minutes of CPU per push on a 6 GB image for a
#: few percent. (BuildKit's own level is core.layercompression.ZSTD_BUILD_LEVEL.)
ZSTD_LEVEL = 3
#: zlib level when converting to gzip: 6, zlib's and BuildKit's default (what a gzip build writes).
GZIP_LEVEL = 6
#: The gzip encoder's piece: large enough that the lost 32 KiB window at each boundary
#: costs nothing measurable, small enough that a 30 MB layer still spreads over the cores.
GZIP_PIECE = 4 << 20
#: >= 1 selects libzstd's multi-threaded mode, whose output does not depend on the count
#: (0 would be the single-threaded mode, whose bytes differ): -1 is every CPU.
ZSTD_THREADS = -1
#: The manifest annotation naming the manifest (the daemon's image ID on the containerd
#: store) whose layers were re-compressed: how a later push knows the tag holds this image.
SOURCE_ANNOTATION = "dlbase.recompressed-from"

ZSTD_LAYER = OCI_LAYER_ZSTD
GZIP_LAYER = OCI_LAYER_GZIP
#: The OCI layer media type of each encoding a conversion writes.
LAYER_TYPES = {ZSTD: ZSTD_LAYER, GZIP: GZIP_LAYER}
#: Layer media types -> how their bytes are encoded.
LAYER_ENCODINGS = {
    OCI_LAYER_GZIP: GZIP,
    DOCKER_LAYER_GZIP: GZIP,
    OCI_LAYER: "none",
    DOCKER_LAYER: "none",
    ZSTD_LAYER: ZSTD,
}
_CHUNK = 1 << 20


class CompressionError(ImageMismatch):
    """A layer that is not what the image's manifest and config say it is (a corrupt store):
    nothing is uploaded."""


@dataclass(frozen=True)
class Layer:
    """One re-encoded layer: where its new bytes are (``target``-encoded) and what they hash to."""

    source_digest: str
    diff_id: str
    digest: str
    size: int
    path: str
    encoding: str = GZIP  # what the stored blob was
    target: str = ZSTD  # what ``path`` holds


def manifest_compression(manifest: dict[str, Any]) -> str:
    """``zstd`` when every layer of an image manifest is zstd, else ``gzip`` (what Docker
    pushes; uncompressed layers count as gzip's side: they are not the zstd choice)."""
    kinds = {LAYER_ENCODINGS.get(str(d.get("mediaType", "")), GZIP) for d in manifest.get("layers") or []}
    return ZSTD if kinds == {ZSTD} else GZIP


_decoder = layerstream.decoder


class _Hashing:
    """A reader that hashes and counts what passes through it (the blob as stored), and
    tells the encoding from the first bytes (a layer's own media type comes later in a
    ``docker save`` stream than the layer: its manifest is written last)."""

    def __init__(self, src: IO[bytes]):
        self.src, self.sha, self.count = src, hashlib.sha256(), 0
        self._head = src.read(4)
        self.encoding = layerstream.encoding_of(self._head)
        self.sha.update(self._head)
        self.count = len(self._head)

    def read(self, n: int = -1) -> bytes:
        if self._head:  # the sniffed bytes first (already hashed and counted)
            head = self._head if n < 0 else self._head[:n]
            self._head = self._head[len(head):]
            return head
        data = self.src.read(n)
        self.sha.update(data)
        self.count += len(data)
        return data


class ParallelGzip:
    """A gzip member written from :data:`GZIP_PIECE` pieces, each deflated on its own on
    ``pool`` (pigz's layout, without its dictionary priming): ``compress`` returns what is
    ready, in order, ``flush`` the rest and the trailer. At most two pieces per worker are
    in flight, so memory stays a few pieces whatever the layer's size."""

    HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, OS unknown

    def __init__(self, pool: ThreadPoolExecutor, *, level: int = GZIP_LEVEL, piece: int | None = None):
        self._pool, self._level, self._piece = pool, level, piece or GZIP_PIECE
        self._buffer = bytearray()
        self._pending: deque[Future[bytes]] = deque()
        self._crc, self._size = 0, 0
        self._head = self.HEADER
        self._limit = 2 * (getattr(pool, "_max_workers", None) or os.cpu_count() or 1)

    def _deflate(self, data: bytes, final: bool) -> bytes:
        encoder = zlib.compressobj(self._level, zlib.DEFLATED, -15)
        return encoder.compress(data) + encoder.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)

    def _submit(self, data: bytes, final: bool) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._pending.append(self._pool.submit(self._deflate, data, final))

    def _ready(self, keep: int) -> bytes:
        out = [self._head]
        self._head = b""
        while len(self._pending) > keep or (self._pending and self._pending[0].done()):
            out.append(self._pending.popleft().result())
        return b"".join(out)

    def compress(self, data: bytes) -> bytes:
        self._buffer += data
        while len(self._buffer) >= self._piece:
            self._submit(bytes(self._buffer[:self._piece]), final=False)
            del self._buffer[:self._piece]
        return self._ready(keep=self._limit)

    def flush(self) -> bytes:
        self._submit(bytes(self._buffer), final=True)
        self._buffer.clear()
        return self._ready(keep=0) + struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF)


def _encoder(target: str, pool: ThreadPoolExecutor | None) -> Any:
    if target == ZSTD:
        import zstandard  # here, not at import: `dlbase --help` and the gzip path need no codec

        return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True).compressobj()
    if target == GZIP:
        return ParallelGzip(pool or ThreadPoolExecutor(max_workers=os.cpu_count() or 1))
    raise ValueError(f"unknown layer compression {target!r}")


def recompress(src: IO[bytes], dst: IO[bytes], *, path: str, target: str = ZSTD,
               on_bytes: Callable[[int], None] = lambda _n: None,
               pool: ThreadPoolExecutor | None = None) -> Layer:
    """Decode one stored layer blob (gzip, zstd or a plain tar, told by its first bytes)
    and encode it as ``target`` into ``dst``; the digests of the stored, decoded and new
    bytes. Decoding runs here while the encoder's threads (libzstd's, or ``pool`` for
    gzip) work on what was decoded before.

    The caller checks them against the manifest and config (:func:`check_layers`) before
    anything is uploaded. ``on_bytes`` gets the count of stored bytes read so far."""
    import zstandard

    stored = _Hashing(src)
    plain = hashlib.sha256()
    out = hashlib.sha256()
    size = 0
    encoder = _encoder(target, pool)
    try:
        reader = _decoder(stored.encoding, stored)  # type: ignore[arg-type]
        while True:
            data = reader.read(_CHUNK)
            if not data:
                break
            plain.update(data)
            piece = encoder.compress(data)
            out.update(piece)
            dst.write(piece)
            size += len(piece)
            on_bytes(stored.count)
        piece = encoder.flush()
        out.update(piece)
        dst.write(piece)
        size += len(piece)
        while stored.read(_CHUNK):  # a gzip stream may end before its blob does (padding)
            pass
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise CompressionError(f"layer {path} cannot be decoded as {stored.encoding}: {exc}") from None
    return Layer(source_digest="sha256:" + stored.sha.hexdigest(), diff_id="sha256:" + plain.hexdigest(),
                 digest="sha256:" + out.hexdigest(), size=size, path=path, encoding=stored.encoding, target=target)


def check_layers(source: dict[str, Any], config: dict[str, Any], layers: list[Layer]) -> None:
    """Each re-compressed layer is the manifest's layer at its place (same stored digest,
    an encoding its media type allows) and decodes to the config's ``diff_id`` there."""
    old = source.get("layers") or []
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if not (len(old) == len(layers) == len(diff_ids)):
        raise CompressionError(f"the manifest names {len(old)} layers, the config {len(diff_ids)} diff_ids, "
                               f"{len(layers)} were re-compressed")
    for i, (d, layer, diff_id) in enumerate(zip(old, layers, diff_ids), 1):
        if d.get("digest") != layer.source_digest:
            raise CompressionError(f"layer {i}: the manifest names {d.get('digest')}, the daemon's bytes hash "
                                   f"to {layer.source_digest}")
        said = LAYER_ENCODINGS.get(str(d.get("mediaType")))
        if said != layer.encoding:
            raise CompressionError(f"layer {i} ({layer.source_digest}) is {layer.encoding}-encoded, its media type "
                                   f"{d.get('mediaType')!r} says {said or 'an unknown encoding'}")
        if layer.diff_id != diff_id:
            raise CompressionError(f"layer {i} ({layer.source_digest}) decodes to {layer.diff_id}, not its "
                                   f"diff_id {diff_id}: the image's layers and config disagree")


def converted_manifest(source: dict[str, Any], layers: list[Layer], *, source_digest: str) -> dict[str, Any]:
    """The OCI image manifest of ``source`` with its layers replaced by ``layers`` (in order,
    each with the media type of its ``target``).

    Kept: the config blob (its media type becomes OCI's: the descriptor's type is not part
    of the config's digest), the layers' and the manifest's annotations, ``artifactType``
    and ``subject`` when present. Added: :data:`SOURCE_ANNOTATION` naming ``source_digest``.
    Pure: ``source`` is not changed."""
    old = source.get("layers") or []
    if len(old) != len(layers):
        raise CompressionError(f"the manifest has {len(old)} layers, {len(layers)} were re-compressed")
    new_layers = []
    for d, layer in zip(old, layers):
        if d.get("digest") != layer.source_digest:
            raise CompressionError(f"layer {d.get('digest')} was re-compressed out of order ({layer.source_digest})")
        entry: dict[str, Any] = {"mediaType": LAYER_TYPES[layer.target], "digest": layer.digest, "size": layer.size}
        if d.get("annotations"):
            entry["annotations"] = dict(d["annotations"])
        new_layers.append(entry)
    config = dict(source["config"])
    if config.get("mediaType") in (DOCKER_CONFIG, None):
        config["mediaType"] = OCI_CONFIG
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if "artifactType" in source:
        manifest["artifactType"] = source["artifactType"]
    manifest["config"] = config
    manifest["layers"] = new_layers
    if "subject" in source:
        manifest["subject"] = source["subject"]
    manifest["annotations"] = {**(source.get("annotations") or {}), SOURCE_ANNOTATION: source_digest}
    return manifest


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The bytes pushed for a manifest: compact, key order kept (the digest is of these)."""
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
