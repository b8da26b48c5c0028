"""Read an image out of the daemon and re-encode its layers as the other format (zstd or
gzip), ready to upload.

Why through ``docker save``: the daemon is where the layers are, and neither `docker push`
(no compression option, on either image store) nor `buildx imagetools` (copies blobs as
they are) can re-encode them; a BuildKit ``type=image,compression=zstd`` push would have
to rebuild the image, which gives another config (another image) and is refused with the
reproducible builds' ``rewrite-timestamp``. ``docker save`` hands over the stored blobs and
the manifest as an OCI layout, byte for byte, on both image stores (Docker >= 25).

The layout is read once, as a stream: blobs up to :data:`SMALL` are kept in memory (the
config, the manifest, the index, tiny layers), larger ones are layers and are
re-encoded into ``workdir`` as they pass (decoded here, encoded on every core meanwhile) (the manifest that names them comes last in
the stream). Then the manifest is found and every layer checked against it and the
config (:func:`dlbase.publish.compression.check_layers`): the result is the manifest to
push and the files of its blobs. Nothing here talks to a registry.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

from dlbase.core import digest as digests
from dlbase.engine import Engine, TransferEvent
from dlbase.publish import compression
from dlbase.publish.compression import CompressionError, Layer
from dlbase.registry import mediatypes

#: Blobs up to this size are kept in memory (registries refuse manifests above 4 MiB).
SMALL = 4 << 20
_MANIFESTS = (mediatypes.OCI_MANIFEST, mediatypes.DOCKER_MANIFEST)
_INDEXES = (mediatypes.OCI_INDEX, mediatypes.DOCKER_LIST)


@dataclass(frozen=True)
class Converted:
    """The converted form of one image: its manifest (bytes and digest) and its blobs' files."""

    image_id: str
    source_manifest_digest: str
    config: bytes
    config_digest: str
    layers: list[Layer]
    manifest: dict[str, Any]
    manifest_bytes: bytes

    @property
    def digest(self) -> str:
        return digests.sha256_of(self.manifest_bytes)

    @property
    def stored_bytes(self) -> int:
        """What a registry holding only this image stores: the config and the layers."""
        return len(self.config) + sum(layer.size for layer in self.layers)


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _image_manifest(image_id: str, diff_ids: list[str], small: dict[str, bytes], index: dict[str, Any]
                    ) -> tuple[str, dict[str, Any], str]:
    """(digest, manifest, config digest) of the image manifest the layout's index leads to:
    the one whose config holds the daemon's diff_ids (an index may also name attestation
    manifests). It must be the image itself: its digest, its config's or an index above
    it on the way is ``image_id``."""
    found: list[tuple[str, dict[str, Any], str, bool]] = []

    def walk(descriptors: list[dict[str, Any]], via_image: bool, depth: int) -> None:
        for d in descriptors:
            digest, media = str(d.get("digest", "")), d.get("mediaType")
            body = small.get(digest)
            if body is None or depth > 4:
                continue
            doc = json.loads(body)
            media = media or doc.get("mediaType")
            if media in _INDEXES:
                walk(doc.get("manifests") or [], via_image or digest == image_id, depth + 1)
            elif media in _MANIFESTS and isinstance(doc.get("config"), dict):
                config_digest = str(doc["config"].get("digest"))
                config = json.loads(small.get(config_digest, b"{}"))
                if ((config.get("rootfs") or {}).get("diff_ids") or []) == diff_ids:
                    found.append((digest, doc, config_digest, via_image or image_id in (digest, config_digest)))

    walk(index.get("manifests") or [], False, 0)
    ours = [f for f in found if f[3]]
    if not ours:
        raise CompressionError(f"`docker save {image_id[:19]}` holds no image manifest of this image",
                               hint="is the image still there? push again")
    digest, manifest, config_digest, _ = ours[0]
    return digest, manifest, config_digest


def convert(engine: Engine, image_id: str, workdir: Path, target: str = compression.ZSTD,
            on_event: Callable[[TransferEvent], None] = lambda _e: None) -> Converted:
    """Re-encode every layer of ``image_id`` as ``target`` under ``workdir``; the manifest to push."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="gzip") as pool:
        return _convert(engine, image_id, workdir, target, on_event, pool)


def _convert(engine: Engine, image_id: str, workdir: Path, target: str,
             on_event: Callable[[TransferEvent], None], pool: ThreadPoolExecutor) -> Converted:
    diff_ids = list(engine.inspect_image(image_id).get("RootFS", {}).get("Layers") or [])
    small: dict[str, bytes] = {}
    converted: dict[str, Layer] = {}
    index: dict[str, Any] | None = None
    with engine.saved_image(image_id) as stream:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if not member.isfile():
                    continue
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                if name == "index.json":
                    index = json.loads(fh.read(SMALL))
                elif name.startswith("blobs/sha256/"):
                    digest = "sha256:" + name.rsplit("/", 1)[-1]
                    if member.size <= SMALL:
                        small[digest] = fh.read()
                        if digests.sha256_of(small[digest]) != digest:
                            raise CompressionError(f"`docker save {image_id[:19]}` gave blob {digest} with "
                                                   "other content")
                    else:
                        converted[digest] = _recompress(fh, digest, member.size, workdir, target, on_event, pool)
    if index is None:
        raise CompressionError(f"`docker save {image_id[:19]}` gave no OCI layout (no index.json)",
                               hint="Docker >= 25 saves OCI layouts; on an older engine push with --compression gzip")
    source_digest, source, config_digest = _image_manifest(image_id, diff_ids, small, index)
    layers = []
    for d in source.get("layers") or []:
        digest = str(d.get("digest"))
        if digest not in converted:
            if digest not in small:
                raise CompressionError(f"`docker save {image_id[:19]}` lacks layer {digest}")
            converted[digest] = _recompress(io.BytesIO(small[digest]), digest, len(small[digest]), workdir, target,
                                             on_event, pool)
        layers.append(converted[digest])
    config = small[config_digest]
    compression.check_layers(source, json.loads(config), layers)
    manifest = compression.converted_manifest(source, layers, source_digest=image_id)
    return Converted(image_id=image_id, source_manifest_digest=source_digest, config=config,
                     config_digest=config_digest, layers=layers, manifest=manifest,
                     manifest_bytes=compression.manifest_bytes(manifest))


def _recompress(fh: IO[bytes], digest: str, size: int, workdir: Path, target: str,
                on_event: Callable[[TransferEvent], None], pool: ThreadPoolExecutor) -> Layer:
    short = _short(digest)
    path = workdir / f"{short}.tar.{'zst' if target == compression.ZSTD else 'gz'}"

    def progress(done: int) -> None:
        on_event(TransferEvent("progress", text=f"Converting to {target}", layer=short, current=done,
                               total_bytes=size))

    with open(path, "wb") as dst:
        layer = compression.recompress(fh, dst, path=str(path), target=target, on_bytes=progress, pool=pool)
    on_event(TransferEvent("layer", text=f"Converted {size:,} -> {layer.size:,} bytes ({target})", layer=short))
    return layer
