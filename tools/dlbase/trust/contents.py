"""What `push` reads of an image, once: its package inventory, its build inputs, and the SBOM.

The inventory is the one `scan` matches (Python distributions from the image's dist-info,
dpkg's status, os-release, read in one throw-away container); the SBOM is built from it,
so the file `push` writes (``.dlbase/reports/sbom-ID.cdx.json``), the signed SBOM
attestation and the scan all describe the same packages, and the file holds the
attestation's predicate byte for byte (:func:`dlbase.trust.sbom.write_canonical`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from dlbase.core.errors import ImageMismatch
from dlbase.core.imageref import labels_of
from dlbase.define.project import Project
from dlbase.image import debian
from dlbase.image.inventory import Inventory
from dlbase.image.inventory_read import read_inventory
from dlbase.trust import predicates, sources

if TYPE_CHECKING:  # the engine is handed in; importing it would load docker
    from dlbase.engine import Engine

PURPOSE = {"dlbase.purpose": "sbom"}


@dataclass(frozen=True)
class ImageContents:
    inventory: Inventory
    built: sources.BuiltFrom
    sbom: dict  # the CycloneDX document: the file and the attestation's predicate
    probed: bool  # the inventory came from the image's own Python (what a scan needs)

    def component_purls(self) -> list[str]:
        """The purls the SBOM lists, which the published VEX names its subcomponents by."""
        return [str(c["purl"]) for c in self.sbom.get("components") or [] if c.get("purl")]


def read(project: Project, engine: Engine, image_id: str, name: str,
         say: Callable[[str], None] = lambda _m: None) -> ImageContents:
    """The image's contents and its SBOM, named ``name`` (``REGISTRY/REPO``, as the attestation's subject)."""
    labels = labels_of(engine.inspect_image(image_id))
    say("reading the image's packages (dist-info, dpkg status), its lock and os-release")
    built = sources.read(project.root, engine, image_id, labels)
    try:
        inventory, probed = read_inventory(engine, image_id, labels=PURPOSE), True
    except ImageMismatch:  # no python in the image: its dpkg packages still are its SBOM
        inventory = Inventory(os_ecosystem=None, os_pretty=None, deb=debian.dpkg_entries(engine, image_id),
                              distro=built.distro, vendor=built.os_id)
        probed = False
    document = predicates.sbom_predicate(image_id=image_id, name=name, python=inventory.python,
                                         debs=inventory.debian_packages(), built=built, labels=labels)
    return ImageContents(inventory, built, document, probed)
