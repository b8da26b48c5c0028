"""Scanning an image on the local daemon: what `scan`, `push --sign` and `scan --attest` share.

The image's names (its variant, tags, repo digests and, for a published image, the
registry digest it was pulled by) decide which VEX statements are about it; its own
packages (read in one throw-away container) are matched against the database; the lock
of its variant is compared when the image names one of this project's variants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dlbase.core import purls
from dlbase.define.project import Project
from dlbase.define.lock import Lock, read_lock
from dlbase.engine import Engine
from dlbase.image import local_image
from dlbase.vuln import report as report_mod
from dlbase.vuln import vex
from dlbase.vuln.db import Database
from dlbase.image.inventory import Inventory
from dlbase.image.inventory_read import read_inventory


def statements(project: Project, folder: Path | None = None) -> list[vex.Statement]:
    """The project's VEX statements (``images/vex`` unless ``folder``), products checked
    against its variants: a typo that would apply to nothing is an error."""
    return vex.load_dir(folder or project.root / vex.DEFAULT_DIR, products=vex.known_products(project.matrix))


def target(project: Project, located: local_image.LocatedImage, *, refs: tuple[str, ...] = (),
           digests: tuple[str, ...] = ()) -> vex.Target:
    """What a VEX product may call this image: its variant, the matrix repository, its tags
    and repo digests, ``refs``/``digests`` (the pushed reference and manifest digest), and
    the ``pkg:oci`` purl of each ``REGISTRY/REPO@DIGEST`` among them (how scanners name it)."""
    inspect = located.inspect
    repo_digests = [d for d in inspect.get("RepoDigests") or [] if "@" in d]
    known = [located.image_id] + [d.split("@", 1)[1] for d in repo_digests]
    named = [r for r in (*repo_digests, located.ref, *refs) if "@sha256:" in r]
    return vex.Target(variant=located.variant, repository=project.matrix.repository,
                      refs=tuple(inspect.get("RepoTags") or ()) + (located.ref, *refs),
                      digests=tuple(dict.fromkeys(known + list(digests))),
                      purls=tuple(dict.fromkeys(purls.oci(*r.rsplit("@", 1)) for r in named)))


def scan(project: Project, engine: Engine, image: str | None, database: Database, *,
         statements: list[vex.Statement], max_age_days: float = 7.0, refs: tuple[str, ...] = (),
         digests: tuple[str, ...] = (), say: Callable[[str], None] = lambda _m: None,
         labels: dict[str, str] | None = None,
         inventory: Inventory | None = None) -> tuple[report_mod.ScanReport, local_image.LocatedImage]:
    """Scan IMAGE (a variant, a reference or an image ID the daemon has); ``inventory``: its
    packages when the caller has read them already (push reads them once, for the SBOM too)."""
    located = local_image.locate(project, engine, image)
    if inventory is None:
        say(f"reading the installed packages of {located.ref}")
        inventory = read_inventory(engine, located.ref, labels=labels)
    lock: Lock | None = None
    if located.variant:
        lock = read_lock(project.variant_dir(located.variant) / "requirements.lock")
    report = report_mod.build(located.ref, inventory, database, statements=statements,
                              target=target(project, located, refs=refs, digests=digests), lock=lock,
                              max_age_days=max_age_days)
    return report, located
