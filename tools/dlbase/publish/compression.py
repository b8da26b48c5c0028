"""Layer compression for `dlbase push --compression`: the media types, re-compressing one
layer to zstd, and the OCI manifest that names the re-compressed layers.

Why zstd: Docker >= 23 (and containerd) pull ``application/vnd.oci.image.layer.v1.tar+zstd``
layers, which decompress several times faster than gzip and are smaller at the level used
here, so a pull (download + unpack) is shorter. Only the layers' *encoding* changes: the
config, and with it the ``diff_ids`` (digests of the uncompressed tars) and the image's
identity in a daemon, stays byte for byte the same. Re-compressing checks that: the
uncompressed bytes of every layer must hash to its ``diff_id``.

The output is reproducible: libzstd's multi-threaded mode gives the same bytes for any
number of worker threads (>= 1), so the same image and level give the same manifest
digest on every push, and a second push finds every blob already there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import IO, Any, Callable

from dlbase.core.errors import ImageMismatch
from dlbase.registry.mediatypes import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, OCI_CONFIG, OCI_LAYER,
                                       OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST)

GZIP, ZSTD = "gzip", "zstd"
CHOICES = (GZIP, ZSTD)
#: libzstd level: 3 (its default) already beats gzip's size on these images; higher levels
#: cost minutes of CPU per push on a 6 GB image for a few percent.
ZSTD_LEVEL = 3
#: >= 1 selects libzstd's multi-threaded mode, whose output does not depend on the count
#: (0 would be the single-threaded mode, whose bytes differ): -1 is every CPU.
ZSTD_THREADS = -1
#: The manifest annotation naming the manifest (the daemon's image ID on the containerd
#: store) whose layers were re-compressed: how a later push knows the tag holds this image.
SOURCE_ANNOTATION = "dlbase.recompressed-from"

ZSTD_LAYER = OCI_LAYER_ZSTD
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
    """One re-compressed layer: where its zstd bytes are and what they hash to."""

    source_digest: str
    diff_id: str
    digest: str
    size: int
    path: str
    encoding: str = GZIP


def manifest_compression(manifest: dict[str, Any]) -> str:
    """``zstd`` when every layer of an image manifest is zstd, else ``gzip`` (what Docker
    pushes; uncompressed layers count as gzip's side: they are not the zstd choice)."""
    kinds = {LAYER_ENCODINGS.get(str(d.get("mediaType", "")), GZIP) for d in manifest.get("layers") or []}
    return ZSTD if kinds == {ZSTD} else GZIP


_MAGIC = {b"\x1f\x8b": GZIP, b"\x28\xb5\x2f\xfd": ZSTD}


def _decoder(encoding: str, src: IO[bytes]) -> IO[bytes]:
    if encoding == GZIP:
        return gzip.GzipFile(fileobj=src, mode="rb")  # type: ignore[return-value]
    if encoding == ZSTD:
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)  # type: ignore[return-value]
    return src


class _Hashing:
    """A reader that hashes and counts what passes through it (the blob as stored), and
    tells the encoding from the first bytes (a layer's own media type comes later in a
    ``docker save`` stream than the layer: its manifest is written last)."""

    def __init__(self, src: IO[bytes]):
        self.src, self.sha, self.count = src, hashlib.sha256(), 0
        self._head = src.read(4)
        self.encoding = next((e for magic, e in _MAGIC.items() if self._head.startswith(magic)), "none")
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


def recompress(src: IO[bytes], dst: IO[bytes], *, path: str,
               on_bytes: Callable[[int], None] = lambda _n: None) -> Layer:
    """Decode one stored layer blob (gzip, zstd or a plain tar, told by its first bytes)
    and zstd-encode it into ``dst``; the digests of the stored, decoded and new bytes.

    The caller checks them against the manifest and config (:func:`check_layers`) before
    anything is uploaded. ``on_bytes`` gets the count of stored bytes read so far."""
    import zstandard  # here, not at import: `dlbase --help` and the gzip path need no codec

    stored = _Hashing(src)
    plain = hashlib.sha256()
    out = hashlib.sha256()
    size = 0
    encoder = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True).compressobj()
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
                 digest="sha256:" + out.hexdigest(), size=size, path=path, encoding=stored.encoding)


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


def zstd_manifest(source: dict[str, Any], layers: list[Layer], *, source_digest: str) -> dict[str, Any]:
    """The OCI image manifest of ``source`` with its layers replaced by ``layers`` (in order).

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
        entry: dict[str, Any] = {"mediaType": ZSTD_LAYER, "digest": layer.digest, "size": layer.size}
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
