"""Signatures and attestations on the registry, in cosign's tag layout.

For an image whose manifest digest is ``sha256:<hex>``:

- ``sha256-<hex>.sig``: an OCI image manifest whose layers are simple-signing payloads,
  each with its signature in an annotation;
- ``sha256-<hex>.att``: an OCI image manifest whose layers are DSSE envelopes, each
  annotated with its ``predicateType``;
- ``sha256-<hex>.att-<12 hex>``: one manifest per attestation (its one layer), written
  before ``.att`` is updated.

Why the extra tags: distribution 2.8 has no conditional manifest PUT, so two hosts that
append to ``.att`` at the same moment can overwrite each other. Every appender re-reads
``.att`` after writing and writes again until its layer is in the list (with a short
random pause), and on top of that its own per-attestation tag can never be lost: readers
(``dlbase trust``) take the union, and every append folds that union back into ``.att``,
which is what cosign reads.

Order, always: blobs first, then a manifest that names only blobs already uploaded, so a
failure half-way leaves at most unreferenced blobs, never a manifest naming a missing one.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from dlbase.core import digest as digests
from dlbase.core.errors import RegistryError
from dlbase.registry import answers
from dlbase.registry.client import RegistryClient
from dlbase.registry.mediatypes import OCI_CONFIG, OCI_MANIFEST
from dlbase.trust.simplesign import SIGNATURE_ANNOTATION

EMPTY_CONFIG = b"{}"
PREDICATE_ANNOTATION = "predicateType"
APPEND_TRIES = 8
SETTLE_SECONDS = (0.2, 0.6)


#: cosign's tag suffixes: ``sha256-<hex>.sig`` holds signatures, ``sha256-<hex>.att`` attestations.
SIG_SUFFIX = ".sig"
ATT_SUFFIX = ".att"


def _hex(digest: str) -> str:
    try:
        return digests.hex_part(digest)
    except ValueError:
        raise RegistryError(f"{digest!r} is not a sha256 manifest digest") from None


def sig_tag(digest: str) -> str:
    return f"sha256-{_hex(digest)}{SIG_SUFFIX}"


def att_tag(digest: str) -> str:
    return f"sha256-{_hex(digest)}{ATT_SUFFIX}"


def att_entry_tag(digest: str, blob_digest: str) -> str:
    return f"{att_tag(digest)}-{_hex(blob_digest)[:12]}"


@dataclass(frozen=True)
class Layer:
    """One signature or attestation: its blob, media type and annotations."""

    blob: bytes
    media_type: str
    annotations: dict[str, str] = field(default_factory=dict)
    where: str = ""

    @property
    def digest(self) -> str:
        return digests.sha256_of(self.blob)

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "size": len(self.blob), "digest": self.digest,
                "annotations": dict(self.annotations)}


def manifest_bytes(descriptors: list[dict]) -> bytes:
    config = {"mediaType": OCI_CONFIG, "size": len(EMPTY_CONFIG), "digest": digests.sha256_of(EMPTY_CONFIG)}
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descriptors}
    return json.dumps(body, separators=(",", ":")).encode()


class ArtifactStore:
    """The ``.sig``/``.att`` artifacts of one repository on one registry."""

    def __init__(self, client: RegistryClient, repository: str, *,
                 on_step: Callable[[str], None] = lambda _s: None):
        self.client, self.repository, self.on_step = client, repository, on_step
        self.bytes_written = 0

    # ---- reading ---------------------------------------------------------------

    def _descriptors(self, tag: str) -> list[dict]:
        if self.client.tag_digest_or_none(self.repository, tag) is None:
            return []
        manifest, _digest = self.client.manifest(self.repository, tag)
        where = f"{self.client.host}/{self.repository}:{tag}"
        found = answers.layers(manifest, where)
        if not found:  # dlbase and cosign never write one without layers: damaged, or not theirs
            raise RegistryError(f"{where}: the manifest under this tag holds no layer, so it is no signature "
                                "or attestation manifest (damaged, or written by another tool)",
                                hint="ask the registry's owner to restore or delete that tag; the image "
                                     "cannot be checked while it is there")
        return found

    def _layers(self, tag: str) -> list[Layer]:
        out = []
        for i, d in enumerate(self._descriptors(tag)):
            blob = self.client.blob(self.repository, d["digest"])
            out.append(Layer(blob, d.get("mediaType", ""), dict(d.get("annotations") or {}),
                             where=f"{self.client.host}/{self.repository}:{tag} layer {i + 1}"))
        return out

    def signatures(self, digest: str) -> list[Layer]:
        return self._layers(sig_tag(digest))

    def attestations(self, digest: str) -> list[Layer]:
        """The union of ``.att`` and the per-attestation tags, each blob once."""
        seen: dict[str, Layer] = {}
        for layer in self._layers(att_tag(digest)):
            seen.setdefault(layer.digest, layer)
        prefix = att_tag(digest) + "-"
        for tag in sorted(t for t in self.client.tags(self.repository) if t.startswith(prefix)):
            for layer in self._layers(tag):
                seen.setdefault(layer.digest, layer)
        return list(seen.values())

    # ---- writing ---------------------------------------------------------------

    def _upload(self, data: bytes) -> None:
        before = self.client.blob_exists(self.repository, digests.sha256_of(data))
        self.client.upload_blob(self.repository, data)
        if not before:
            self.bytes_written += len(data)

    def _put(self, tag: str, descriptors: list[dict]) -> str:
        body = manifest_bytes(descriptors)
        self.on_step(f"manifest {tag}")
        digest = self.client.put_manifest(self.repository, tag, body, OCI_MANIFEST)
        self.bytes_written += len(body)
        return digest

    def append(self, tag: str, layers: list[Layer], *, entry_tags: bool = False) -> list[str]:
        """Add layers to the manifest under ``tag`` (blobs first), keeping what is there.

        Read-modify-write with a re-check: after writing, wait a moment, read the tag
        again, and write again while any of our layers is missing (another writer won
        the race). With ``entry_tags`` each layer also gets a tag of its own (written
        first), and the union of those tags is folded into ``tag``. Returns the digests
        of our layers.
        """
        self.on_step("blobs")
        self._upload(EMPTY_CONFIG)
        for layer in layers:
            self._upload(layer.blob)
        ours = [layer.descriptor() for layer in layers]
        extra: list[dict] = []
        if entry_tags:
            for desc in ours:
                self._put(f"{tag}-{_hex(desc['digest'])[:12]}", [desc])
        wanted = {_identity(d) for d in ours}
        for attempt in range(1, APPEND_TRIES + 1):
            current = self._descriptors(tag)
            if entry_tags:
                extra = self._entry_descriptors(tag)
            have = {_identity(d) for d in current}
            merged = list(current)
            for d in extra + ours:
                if _identity(d) not in have:
                    merged.append(d)
                    have.add(_identity(d))
            if len(merged) != len(current):
                self._put(tag, merged)
            time.sleep(random.uniform(*SETTLE_SECONDS))
            if wanted <= {_identity(d) for d in self._descriptors(tag)}:
                return sorted(d["digest"] for d in ours)
            self.on_step(f"re-check {attempt}: another writer replaced {tag}; merging again")
        raise RegistryError(f"{self.client.host}/{self.repository}:{tag} kept changing under {APPEND_TRIES} "
                            "attempts to append; the attestation is stored under its own tag",
                            hint="run the same command again when the other writers are done")

    def _entry_descriptors(self, tag: str) -> list[dict]:
        prefix = tag + "-"
        found = []
        for t in sorted(x for x in self.client.tags(self.repository) if x.startswith(prefix)):
            found += self._descriptors(t)
        return found


def _identity(desc: dict) -> tuple[str, str]:
    """A layer is the same layer when blob and signature annotation agree: two signatures
    of one simple-signing payload (two keys) are two layers."""
    return desc["digest"], (desc.get("annotations") or {}).get(SIGNATURE_ANNOTATION, "")
