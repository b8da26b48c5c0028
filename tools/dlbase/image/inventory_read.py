"""An image's package inventory, read from inside it (the scan's and the SBOM's input).

One throw-away container runs :mod:`dlbase.image.inventory_probe` on the image's own
Python (as :mod:`dlbase.image.readback` does for versions): what the image's dist-info
says is installed, not what a lock or label claims.
"""

from __future__ import annotations

from pathlib import Path

from dlbase.core import documents
from dlbase.core.errors import DlbaseError, ImageMismatch
from dlbase.engine import Engine
from dlbase.image import inventory_probe
from dlbase.image.inventory import Inventory, parse_dpkg_status, parse_os_release, purl_distro

MARKER = "DLBASE_INVENTORY "


def read_inventory(engine: Engine, image: str, *, labels: dict[str, str] | None = None) -> Inventory:
    source = Path(inventory_probe.__file__).read_text(encoding="utf-8")
    try:
        res = engine.run(image, ["python", "-c", source], timeout=300, entrypoint=[], network_mode="none",
                         labels={"dlbase.purpose": "scan", **(labels or {})})
    except DlbaseError as exc:
        if "executable file not found" not in exc.message:
            raise
        raise ImageMismatch(f"{image} has no `python` on its PATH: its installed packages cannot be read",
                            hint="scan a dlbase image (its venv's python is on PATH), or a variant's lock "
                                 "with --from-lock") from None
    for line in res.output.splitlines():
        if line.startswith(MARKER):
            return _inventory(line[len(MARKER):], image)
    raise ImageMismatch(f"could not read the installed packages of {image} (exit {res.exit_code}): "
                        "the image needs a `python` on its PATH",
                        details=res.output.splitlines()[-15:],
                        hint="scan a dlbase image (its venv's python is on PATH), or use --from-lock for a variant")


def _inventory(text: str, image: str) -> Inventory:
    """The probe's answer through the bounded reader, each field checked: the image under
    scan may be anyone's, and what runs in it decides what it prints."""
    source = documents.Source(f"the package list {image} printed", ImageMismatch,
                              "scan a dlbase image, or a variant's lock with --from-lock")
    raw = documents.expect_object(documents.parse_json(text, "image-probe", source), source)
    python = documents.expect(raw, "python", dict, source, required=False, default={})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in python.items()):
        raise source.fail("'python' must map distribution names to version strings")
    release = documents.expect(raw, "os_release", str, source, required=False, default="")
    ecosystem, pretty = parse_os_release(release)
    vendor, distro = purl_distro(release)
    return Inventory(os_ecosystem=ecosystem, os_pretty=pretty, python=dict(python), distro=distro, vendor=vendor,
                     deb=parse_dpkg_status(documents.expect(raw, "dpkg_status", str, source, required=False,
                                                            default="")))
