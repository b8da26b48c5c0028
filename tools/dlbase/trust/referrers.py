"""Finding an image's Sigstore bundles: OCI 1.1 referrers, and the tag a registry without them gets.

cosign 3 stores each signature and attestation as its own OCI manifest whose ``subject``
is the image and whose one layer is the bundle. A registry with the referrers API lists
them at ``GET /v2/REPO/referrers/DIGEST``; on one without it (Debian's distribution 2.8)
cosign keeps an image index of them under the tag ``sha256-<hex>`` (no suffix; the
legacy ``.sig``/``.att`` tags are :mod:`store`'s). Both are read and their union taken.

Nothing here is trusted: an entry that is not a bundle, whose manifest names another
subject, or whose bundle is larger than any real one is ignored (with why) before its
bundle is downloaded or parsed; a referrers endpoint that answers no index (an HTML
page, a loop) is ignored with the fallback tag still read; more candidate bundles than
:data:`MAX_BUNDLES` is a clear error rather than ten thousand requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlbase.core import documents
from dlbase.core.errors import RegistryError
from dlbase.registry import answers
from dlbase.registry.client import RegistryClient
from dlbase.registry.mediatypes import INDEX_TYPES, OCI_EMPTY
from dlbase.trust import bundle, store

#: Bundles read per image at most: a signature, a few attestations each from a few
#: signers is dozens; more is someone filling the registry.
MAX_BUNDLES = 200
#: The ``artifactType`` a bundle's manifest carries (cosign 3 writes the v0.3 type).
ARTIFACT_TYPES = frozenset(bundle.MEDIA_TYPES) | {"application/vnd.dev.sigstore.bundle+json"}
#: What an index entry may say of its artifact type and still be a bundle: cosign 3's
#: fallback index names its entries by their config type (empty) instead.
ENTRY_TYPES = ARTIFACT_TYPES | {"", OCI_EMPTY}
BUNDLE_MAX = documents.LIMITS["sigstore-bundle"].max_bytes


def fallback_tag(digest: str) -> str:
    """cosign's referrers tag for ``digest``: ``sha256-<hex>``."""
    return store.sig_tag(digest)[: -len(store.SIG_SUFFIX)]


@dataclass
class Found:
    """The bundles found (as layers: blob, media type, the manifest's annotations) and what was ignored."""

    layers: list[store.Layer] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)


def _ignore(found: Found, where: str, why: str) -> None:
    found.ignored.append({"kind": "referrer", "where": where, "fingerprint": None, "predicateType": None, "why": why})


def _entries(client: RegistryClient, repository: str, digest: str, found: Found) -> list[dict]:
    """The index entries of the referrers API and of the fallback tag, each manifest once."""
    entries: dict[str, dict] = {}
    api_where = f"{client.host}/{repository}/referrers/{digest}"
    try:
        listed = client.referrers(repository, digest)
    except RegistryError as exc:
        _ignore(found, api_where, f"the referrers API answered no usable index ({exc.message}); "
                                  f"the tag {fallback_tag(digest)} is read instead")
        listed = None
    for entry in listed or []:
        entries.setdefault(entry["digest"], entry)
    tag = fallback_tag(digest)
    if client.tag_digest_or_none(repository, tag) is not None:
        index, _ = client.manifest(repository, tag)
        where = f"{client.host}/{repository}:{tag}"
        if index.get("mediaType") not in INDEX_TYPES and "manifests" not in index:
            _ignore(found, where, "the tag holds no image index, so it is not cosign's referrers tag")
        else:
            for entry in answers.manifests(index, where):
                entries.setdefault(entry["digest"], entry)
    return list(entries.values())


def find(client: RegistryClient, repository: str, digest: str) -> Found:
    """Every bundle whose manifest names ``digest`` as its subject."""
    found = Found()
    candidates = [e for e in _entries(client, repository, digest, found)
                  if e.get("artifactType", "") in ENTRY_TYPES]
    if len(candidates) > MAX_BUNDLES:
        raise RegistryError(f"{client.host}/{repository}@{digest} has {len(candidates)} referrers that may be "
                            f"Sigstore bundles, more than the {MAX_BUNDLES} dlbase reads for one image",
                            hint="someone filled the registry with signatures; ask its operator to remove the "
                                 "ones that are not the publisher's")
    for entry in candidates:
        where = f"{client.host}/{repository}@{entry['digest']}"
        try:
            layer = _bundle_layer(client, repository, digest, entry["digest"], where)
        except RegistryError as exc:
            _ignore(found, where, exc.message)
            continue
        if isinstance(layer, str):
            _ignore(found, where, layer)
        elif layer is not None:
            found.layers.append(layer)
    return found


def _bundle_layer(client: RegistryClient, repository: str, digest: str, manifest_digest: str,
                  where: str) -> store.Layer | str | None:
    """The bundle of one referrer manifest; why it is ignored (text); None when it is
    another kind of artifact (an SBOM pushed by another tool: not ours to judge)."""
    manifest, _ = client.manifest(repository, manifest_digest)
    layers = answers.layers(manifest, where)
    kinds = {manifest.get("artifactType"), *(d.get("mediaType") for d in layers)}
    if not kinds & ARTIFACT_TYPES:
        return None
    subject = manifest.get("subject")
    named = subject.get("digest") if isinstance(subject, dict) else None
    if named != digest:
        return f"a Sigstore bundle about {named or 'no subject'}, not {digest}"
    if len(layers) != 1 or layers[0].get("mediaType") not in ARTIFACT_TYPES:
        return "a bundle manifest holds exactly one bundle layer; this one does not"
    desc = layers[0]
    if desc["size"] > BUNDLE_MAX:
        return f"its bundle is {desc['size']:,} bytes, more than the {BUNDLE_MAX:,} a bundle may be; not downloaded"
    blob = client.blob(repository, desc["digest"], max_bytes=BUNDLE_MAX)
    notes = manifest.get("annotations") if isinstance(manifest.get("annotations"), dict) else {}
    return store.Layer(blob, desc["mediaType"], {k: v for k, v in notes.items() if isinstance(v, str)},
                       where=f"{where} (bundle)")

