"""What push reads of an image, once (dlbase.trust.contents), with a fake engine for the
daemon's answers: the inventory the scan matches becomes the SBOM, and an image without
Python still gets its Debian packages listed. The real path runs in
tests/integration/test_trust_push.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dlbase.core.errors import DlbaseError, Missing
from dlbase.image.inventory_read import MARKER
from dlbase.trust import contents

STATUS = ("Package: apt\nStatus: install ok installed\nVersion: 2.6.1\nArchitecture: amd64\n\n"
          "Package: broken\nStatus: install ok installed\nArchitecture: amd64\n")
RELEASE = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
FILES = {"/var/lib/dpkg/status": STATUS.encode(), "/etc/os-release": RELEASE.encode()}


@dataclass
class Ran:
    exit_code: int
    output: str


class FakeEngine:
    def __init__(self, python: dict[str, str] | None):
        self.python, self.runs = python, 0

    def inspect_image(self, image_id):
        return {"Id": image_id, "Config": {"Labels": {"dlbase.variant": "v1"}}}

    def read_image_file(self, image, path, labels=None):
        if path not in FILES:
            raise Missing(f"no {path} in {image}")
        return FILES[path]

    def run(self, image, command, **_kw):
        self.runs += 1
        if self.python is None:
            raise DlbaseError('exec: "python": executable file not found in $PATH')
        probe = {"python": self.python, "dpkg_status": STATUS, "os_release": RELEASE}
        return Ran(0, MARKER + json.dumps(probe) + "\n")


class FakeProject:
    root = Path("/nonexistent")


def test_the_sbom_is_made_of_the_one_inventory_the_scan_reads():
    engine = FakeEngine({"numpy": "2.2.1"})
    read = contents.read(FakeProject(), engine, "sha256:" + "ab" * 32, "127.0.0.1:5000/r/x")
    assert engine.runs == 1 and read.probed
    assert read.component_purls() == ["pkg:pypi/numpy@2.2.1", "pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12"]
    assert read.sbom["metadata"]["component"]["name"] == "127.0.0.1:5000/r/x"
    scanned = {p for package in read.inventory.packages() for p in package.purls}
    assert set(read.component_purls()) <= scanned  # what a VEX subcomponent is matched against: the SBOM's purls


def test_an_image_without_python_still_lists_its_debian_packages():
    read = contents.read(FakeProject(), FakeEngine(None), "sha256:" + "ab" * 32, "127.0.0.1:5000/r/x")
    assert not read.probed and read.inventory.python == {}
    assert read.component_purls() == ["pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12"]
