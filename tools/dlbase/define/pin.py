"""`dlbase pin`: ask each base image's registry for the digest of its tag, write it into
the matrix. Digests are never typed by hand; a registry that cannot be reached leaves
that base unpinned (and `dlbase check` keeps warning about it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlbase.core import yamlio
from dlbase.core.errors import DlbaseError, InvalidInput
from dlbase.define.matrix import Matrix
from dlbase.core import reference
from dlbase.registry.client import RegistryClient, api_host


@dataclass
class PinResult:
    base: str
    reference: str
    old: str | None
    new: str | None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error:
            return "unreachable" if "reach" in self.error or "answer" in self.error else "failed"
        if self.old == self.new:
            return "unchanged"
        return "pinned" if self.old is None else "updated"


def check_names(matrix: Matrix, names: list[str]) -> None:
    """Every base named on the command line must exist and come from a registry."""
    registry = [k for k, b in matrix.bases.items() if b.source == "registry"]
    for name in names:
        base = matrix.bases.get(name)
        if base is None:
            raise InvalidInput(f"{matrix.path}: no base named '{name}'",
                               hint=f"registry bases: {', '.join(registry) or '(none)'}")
        if base.source != "registry":
            raise InvalidInput(f"{matrix.path}: base '{name}' is built on this machine ({base.source}), "
                               "it has no registry digest to pin",
                               hint="`dlbase base bootstrap` makes it; pin one of: " + (", ".join(registry) or "(none)"))


def resolve(matrix: Matrix, only: list[str] | None = None,
            client_for=RegistryClient) -> list[PinResult]:
    """Resolve every registry base (or those named) to its current digest."""
    results = []
    for key, base in matrix.bases.items():
        if base.source != "registry" or (only and key not in only):
            continue
        ref = reference.parse(f"{base.image}:{base.tag}", where=f"base '{key}'").normalized()
        try:
            digest = client_for(api_host(ref)).manifest_digest(ref.repository, ref.tag)
            results.append(PinResult(key, base.tag_ref, base.digest, digest))
        except DlbaseError as exc:
            results.append(PinResult(key, base.tag_ref, base.digest, None, exc.message))
    return results


def write(matrix_file: Path, display: str, results: list[PinResult]) -> bool:
    """Write the resolved digests into the matrix file, keeping its comments. True if changed."""
    changed = [r for r in results if r.new and r.new != r.old]
    if not changed:
        return False
    data = yamlio.load(matrix_file, display, round_trip=True)
    for r in changed:
        data["bases"][r.base]["digest"] = r.new
    yamlio.dump_atomic(data, matrix_file)
    return True
