"""A small, variant-like project for fast builds of the project's own templates.

A full image takes minutes and 6 GB. Failure paths (bad step, hash mismatch, missing
base, Ctrl-C, daemon loss), reproducibility checks and verify's negative cases need
many builds, so this makes a copy of the project whose default variant is rendered from
the real templates but whose lock pins one tiny wheel made here, offline:

- the lock's header carries the fingerprint of the variant's real inputs, so every
  drift check passes: the lock "lies" about its content, which is the point;
- the wheel is written into the copy's own wheelhouse (``.dlbase/wheelhouse/``, which a
  project uses instead of the machine's shared cache), so filling it needs no network and
  the shared cache never holds it; the uv wheel the layer RUNs fetch
  (images/_build/installer.lock) is copied from the checkout's default wheelhouse (the
  cache), filled from PyPI once per machine;
- the image builds in ~15 s (Debian 12 + Python 3.11 + the tiny wheel) and reading it
  back fails (no torch), so `dlbase build` refuses to tag it: the mismatch path.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from dlbase.define import lock as lock_mod
from dlbase.define import layering
from dlbase.define import render
from dlbase.define.project import Project
from dlbase.define.spec import INSTALLER_LOCK, LOCK_PLATFORM, BuildSpec, lock_spec
from dlbase.build.wheelhouse import PROJECT_WHEELHOUSE, default_wheelhouse, fill, platform_tags_for

ROOT = Path(__file__).resolve().parents[2]
COPY = ("images", "templates", "tests/image", "runtime", "README.md", ".dockerignore", ".hadolint.yaml", "ci")


@dataclass
class SmallProject:
    root: Path
    variant: str
    lock: Path
    wheel: Path
    wheelhouse: Path

    @property
    def dockerfile(self) -> Path:
        return self.root / "images" / self.variant / "Dockerfile"

    def project(self) -> Project:
        return Project.discover(self.root)


def write_wheel(directory: Path, dist: str, version: str, files: dict[str, str]) -> Path:
    """A valid pure-Python wheel (PEP 427) of ``dist`` holding ``files``; the same inputs
    give the same bytes, so its sha256 can be pinned in a lock."""
    directory.mkdir(parents=True, exist_ok=True)
    norm = re.sub(r"[-_.]+", "_", dist)
    info = f"{norm}-{version}.dist-info"
    files = {**files, f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: dlbase-tests\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    wheel = directory / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            entry = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            zf.writestr(entry, text)
    return wheel


def make_wheel(directory: Path, name: str = "dlbase_tiny", version: str = "1.0", payload: str = "") -> Path:
    """The tiny package the small project's lock pins."""
    return write_wheel(directory, name, version,
                       {f"{name}/__init__.py": f'"""tiny test package"""\nVALUE = {payload!r}\n'})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_lock(spec: BuildSpec, path: Path, pins: list[tuple[str, str, str]],
               constraints: list[str] | None = None) -> None:
    """A lock with the variant's true fingerprint and the given (name, version, sha256) pins."""
    lspec = lock_spec(spec, constraints)
    body = "".join(f"{n}=={v} \\\n    --hash=sha256:{h}\n" for n, v, h in pins)
    header = lock_mod._header(lspec, lspec.fingerprint(), body)  # the same header `dlbase lock` writes
    path.write_text(header + body)
    path.chmod(0o644)


def copy_installer_wheels(house: Path, spec: BuildSpec) -> None:
    """The installer lock's wheels (uv), fetched once into the checkout's default wheelhouse and
    copied from there, so a test's build needs no network of its own."""
    installer = ROOT / INSTALLER_LOCK
    if not installer.is_file():
        return
    shared = default_wheelhouse(spec.variant.python, LOCK_PLATFORM, root=ROOT)
    for path in fill(installer, shared, python_version=spec.variant.python,
                     platform_tags=platform_tags_for(LOCK_PLATFORM)):
        shutil.copy2(path, house / path.name)


def make_small_project(tmp: Path, *, payload: str = "", variant: str | None = None) -> SmallProject:
    """Copy the project into tmp/<name> with a tiny-lock default variant (see module doc)."""
    root = tmp / "small-project"
    for rel in COPY:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, root / rel, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        elif src.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
    project = Project.discover(root)
    name = variant or project.matrix.default
    spec = BuildSpec.of(project.compat, project.matrix.get(name))
    # Its own wheelhouse, never the machine's shared cache: the tiny wheel written here is
    # pinned by this copy's lock only, and tests tamper with it.
    (root / PROJECT_WHEELHOUSE).mkdir(parents=True)
    house = default_wheelhouse(spec.variant.python, LOCK_PLATFORM, root=root)
    wheel = make_wheel(house, payload=payload)
    copy_installer_wheels(house, spec)
    lock = root / "images" / name / "requirements.lock"
    write_lock(spec, lock, [("dlbase-tiny", "1.0", sha256(wheel))],
               layering.parent_constraints(project, spec.variant))
    render.write(project)  # the per-layer subsets (and the Dockerfile's install steps) follow the tiny lock
    return SmallProject(root=root, variant=name, lock=lock, wheel=wheel, wheelhouse=house)
