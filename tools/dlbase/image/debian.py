"""The Debian packages installed in an image, read from its dpkg status file.

Read from a never-started container (no command of the image runs, so an image without
``dpkg-query`` or with an odd entrypoint still answers) and parsed by the one dpkg status
reader, :func:`dlbase.image.inventory.parse_dpkg_status` (the scan's and
``rebuild-check``'s too): SBOM, provenance and scan cannot disagree on what is installed.
"""

from __future__ import annotations

from dlbase.core.errors import DlbaseError
from dlbase.engine import Engine
from dlbase.image.inventory import DebPackage, parse_dpkg_status

DPKG_STATUS = "/var/lib/dpkg/status"
PURPOSE = {"dlbase.purpose": "sbom"}


def dpkg_entries(engine: Engine, image: str, labels: dict[str, str] | None = None) -> list[DebPackage]:
    """Every installed package of the image's dpkg status (none without one: not Debian-based)."""
    try:
        text = engine.read_image_file(image, DPKG_STATUS, labels=labels or PURPOSE)
    except DlbaseError:  # Missing, or an image that cannot make a container: no such fact
        return []
    return parse_dpkg_status(text.decode("utf-8", "replace"))


def debian_packages(engine: Engine, image: str, labels: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(name, version, arch) of every installed Debian package, from the image's dpkg status."""
    return [(d.name, d.version, d.arch) for d in dpkg_entries(engine, image, labels) if d.name and d.version and d.arch]
