"""What an image was built from, read where that is true: the image and the commit it names.

The SBOM and the provenance describe one image, possibly weeks after its build, from a
checkout that has moved on (re-locked, re-rendered, another branch). So:

- the lock is the copy the build put into the image (``/opt/dlbase/requirements.lock``),
  never the checkout's current file;
- the Dockerfile is the rendered file at the commit in the image's revision label, read
  from git. A build from a dirty tree (revision ``...-dirty``) or a commit this clone
  lacks names no Dockerfile that can be shown to be the one built, so there is none
  (the provenance then lists no Dockerfile rather than a wrong one);
- the distribution is the image's own ``/etc/os-release`` (``ID``, ``VERSION_ID``), so an
  Ubuntu 22.04 image's packages are ``pkg:deb/ubuntu/...&distro=ubuntu-22.04``.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dlbase.core import purls
from dlbase.core.errors import DlbaseError
from dlbase.define.spec import LOCK_IN_IMAGE
from dlbase.define import labels as image_labels

if TYPE_CHECKING:  # the engine is handed in; importing it would load docker
    from dlbase.engine import Engine

OS_RELEASE = "/etc/os-release"
PURPOSE = {"dlbase.purpose": "sbom"}


@dataclass(frozen=True)
class Material:
    """One input of the build: where it lives and its bytes."""

    uri: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class BuiltFrom:
    lock: Material | None
    dockerfile: Material | None
    os_id: str | None  # "debian", "ubuntu"
    os_version: str | None  # "12", "22.04"

    @property
    def distro(self) -> str | None:
        """The purl ``distro`` qualifier: ``debian-12``, ``ubuntu-22.04`` (syft's spelling)."""
        return purls.distro_qualifier(self.os_id, self.os_version)


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): KEY=VALUE lines, values in shell quoting; comments and junk skipped."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not key.isidentifier():
            continue
        try:
            parts = shlex.split(value)
        except ValueError:
            continue
        found[key] = parts[0] if parts else ""
    return found


def _image_file(engine: Engine, image_id: str, path: str) -> bytes | None:
    try:
        return engine.read_image_file(image_id, path, labels=PURPOSE)
    except DlbaseError:  # Missing, or an image that cannot make a container: no such fact
        return None


def dockerfile_at(root: Path, revision: str | None, variant: str | None) -> Material | None:
    """``images/VARIANT/Dockerfile`` as committed at ``revision``; None when that is unknowable."""
    if not revision or not variant or revision.endswith("-dirty") or revision == "unknown":
        return None
    rel = f"images/{variant}/Dockerfile"
    try:
        shown = subprocess.run(["git", "show", f"{revision}:{rel}"], cwd=root, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return Material(rel, shown.stdout) if shown.returncode == 0 else None


def read(root: Path, engine: Engine, image_id: str, labels: dict[str, str]) -> BuiltFrom:
    """The build's inputs of ``image_id`` (its labels given), each from its true source."""
    variant = labels.get(image_labels.VARIANT)
    lock = _image_file(engine, image_id, LOCK_IN_IMAGE)
    release = parse_os_release((_image_file(engine, image_id, OS_RELEASE) or b"").decode("utf-8", "replace"))
    return BuiltFrom(
        lock=Material(f"images/{variant}/requirements.lock" if variant else LOCK_IN_IMAGE, lock) if lock else None,
        dockerfile=dockerfile_at(root, labels.get(image_labels.REVISION), variant),
        os_id=release.get("ID") or None, os_version=release.get("VERSION_ID") or None)
