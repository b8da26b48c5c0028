"""What `dlbase check` says about a variant's release beyond the table lookup: the pairs its
lock holds, the licences it ships, and (with --wheels) the table against the wheels.

Why here and not in compat.py: these read the variant's lock and the index, while compat.py
stays a pure table. The findings are compat.Findings, so check prints them like the rest.
"""

from __future__ import annotations

from typing import Any

from dlbase.core import fileerrors
from dlbase.core.errors import DlbaseError, Unreachable
from dlbase.define import compat_add
from dlbase.define.compat import Finding, license_findings, pair_findings
from dlbase.define.lock import read_lock
from dlbase.define.matrix import Variant


def _locked(project: Any, variant: Variant) -> dict[str, str] | None:
    path = project.variant_dir(variant.name) / "requirements.lock"
    if not fileerrors.is_file(path, what="lock file"):
        return None
    try:
        return {p.key: p.version for p in read_lock(path).packages}
    except DlbaseError:
        return None  # a damaged lock is `dlbase lock --check`'s finding, not this one's


def variant_findings(project: Any, variant: Variant) -> list[Finding]:
    """Pairs the table does not make (in the variant's pins and in its lock) and AGPL
    packages it would ship (from the lock; from its pins while it has none)."""
    compat = project.compat
    out = pair_findings(compat, variant.torch, variant.packages, f"variant {variant.name}")
    locked = _locked(project, variant)
    if locked is not None:
        out += pair_findings(compat, variant.torch, locked, f"the lock of {variant.name}")
    shipped = list(locked) if locked is not None else list(variant.packages)
    out += license_findings(compat, shipped, variant.name)
    if "albumentations" in shipped and "albumentationsx" in shipped:
        out.append(Finding("packages", f"{variant.name} installs both albumentations and albumentationsx; both "
                                       "provide the `albumentations` module, the later one overwrites the other",
                           "choose one for the line"))
    return out


def wheel_findings(project: Any, variant: Variant, cache: dict[str, list[Finding]]) -> list[Finding]:
    """The variant's release as the table writes it, against its wheels' metadata on PyPI
    (one read per release, kept in ``cache``). A line other than the PyPI default is on an
    index these machines cannot reach: said, not failed."""
    compat = project.compat
    rel = compat.release(variant.torch)
    if rel is None:
        return []
    out: list[Finding] = []
    if variant.line != rel.pypi_default:
        out.append(Finding("wheels", f"line {variant.line} of torch {rel.torch} is not compared with its wheels: "
                                     f"they are on {compat.indexes.get(variant.line)}, not read here",
                           severity="warning"))
    if rel.torch not in cache:
        index = compat.indexes["pypi"]
        try:
            derived = compat_add.derive(rel.torch, index_url=index, python=variant.python)
            cache[rel.torch] = compat_add.compare(rel, derived, f"{compat.path} torch {rel.torch}")
        except Unreachable as exc:
            cache[rel.torch] = [Finding("wheels", f"torch {rel.torch} not compared with its wheels: {exc.message}",
                                        "run `dlbase check --wheels` where PyPI can be reached",
                                        severity="warning")]
        except DlbaseError as exc:
            cache[rel.torch] = [Finding("wheels", f"torch {rel.torch}: reading its wheels failed: {exc.message}",
                                        exc.hint)]
    return out + cache[rel.torch]
