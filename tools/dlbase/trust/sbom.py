"""CycloneDX 1.5 SBOM (JSON) of an image's Python environment.

Components are the Python distributions installed in the image (as read from inside
it), each with a ``pkg:pypi/NAME@VERSION`` purl and, where the variant's lock pins the
package at that version, the lock's sha256 hashes. A lock pins one hash per published
wheel of that version (one per platform/Python); the wheel pip installed is one of them,
which the ``dlbase:hashes`` property says. Distributions the lock does not pin (pip,
setuptools from the venv) carry no hashes rather than invented ones.

The document is deterministic for the same inputs (serial number derived from the image
ID, components sorted, and no wall-clock timestamp: CycloneDX makes ``metadata.timestamp``
optional, and it is set only when the caller passes a fixed one, such as the image's
``org.opencontainers.image.created``), so two reports of one image compare equal.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from packaging.utils import canonicalize_name

from dlbase import __version__
from dlbase.core import purls
from dlbase.core.imageref import short_id
from dlbase.define import lock as lock_mod
from dlbase.core.fsutil import write_bytes_atomic, write_json_atomic
from dlbase.trust import statements

SPEC_VERSION = "1.5"


purl = purls.pypi  # pkg:pypi/NAME@VERSION, spelled in one place


def lock_hashes(lock_path: Path | None = None, *, lock_text: str | None = None) -> dict[str, tuple[str, list[str]]]:
    """canonical name -> (pinned version, [sha256 hex, ...]) from a lock (a file, or its text
    as read from an image), {} without one."""
    if lock_text is not None:
        lock = lock_mod.parse_lock_text(lock_text, source="the image's lock")
    elif lock_path is None or not Path(lock_path).is_file():
        return {}
    else:
        lock = lock_mod.read_lock(Path(lock_path))
    return {canonicalize_name(p.name): (p.version, sorted(h.split(":", 1)[1] for h in p.hashes if h.startswith("sha256:")))
            for p in lock.packages}


def cyclonedx(*, image_id: str, image_name: str, packages: dict[str, str], lock_path: Path | None = None,
              lock_text: str | None = None, properties: dict[str, str] | None = None,
              timestamp: str | None = None) -> dict:
    """The SBOM document (a dict ready for json.dump); the lock as a file or as text."""
    pinned = lock_hashes(lock_path, lock_text=lock_text)
    components = []
    for name, version in sorted(packages.items(), key=lambda kv: canonicalize_name(kv[0])):
        ref = purl(name, version)
        component: dict = {"type": "library", "bom-ref": ref, "name": name, "version": version, "purl": ref}
        pin = pinned.get(canonicalize_name(name))
        if pin and pin[0] == version and pin[1]:
            component["hashes"] = [{"alg": "SHA-256", "content": h} for h in pin[1]]
            component["properties"] = [{"name": "dlbase:hashes",
                                        "value": "sha256 of every wheel the lock pins for this version; "
                                                 "the installed wheel is one of them"}]
        elif pin:
            component["properties"] = [{"name": "dlbase:lock-version", "value": pin[0]}]
        components.append(component)
    meta_props = [{"name": k, "value": str(v)} for k, v in sorted((properties or {}).items())]
    metadata: dict = {"timestamp": timestamp} if timestamp else {}
    metadata.update({
        "tools": {"components": [{"type": "application", "name": "dlbase", "version": __version__}]},
        "component": {"type": "container", "bom-ref": image_id, "name": image_name, "version": image_id,
                      "hashes": [{"alg": "SHA-256", "content": image_id.split(":")[-1]}],
                      "properties": meta_props},
    })
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'dlbase:' + image_id)}",
        "version": 1,
        "metadata": metadata,
        "components": components,
    }


def write(path: Path, document: dict) -> Path:
    """Write atomically; returns the path."""
    return write_json_atomic(path, document)


def write_canonical(path: Path, document: dict) -> Path:
    """Write the document's canonical bytes (:func:`dlbase.trust.statements.canonical`): the
    same bytes the signed SBOM attestation carries as its predicate, so the file a user
    archives is the attested SBOM, not a copy that might differ."""
    write_bytes_atomic(path, statements.canonical(document))
    return path


def path_for(reports_dir: Path, image_id: str) -> Path:
    return reports_dir / f"sbom-{short_id(image_id)}.cdx.json"


deb_purl = purls.deb  # pkg:deb/VENDOR/NAME@VERSION?arch=..&distro=..


def add_debian(document: dict, debs: list[tuple[str, str, str]], distro: str | None = None,
               vendor: str = "debian") -> dict:
    """The same document with the image's dpkg packages (name, version, arch) added as
    components (dpkg's status, read from inside the image); sorted, deterministic."""
    extra = []
    for name, version, arch in sorted(set(debs)):
        ref = deb_purl(name, version, arch, distro, vendor)
        extra.append({"type": "library", "bom-ref": ref, "name": name, "version": version, "purl": ref,
                      "properties": [{"name": "dlbase:package-manager", "value": "dpkg"}]})
    return {**document, "components": list(document.get("components") or []) + extra}
