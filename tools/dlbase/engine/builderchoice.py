"""Which builder a build uses: BuildKit (buildx) or the classic builder, and why.

One decision, made in one place, with a reason a progress line and ``--json`` can show.
Pure: the two facts it needs (does ``docker buildx version`` answer, does the daemon use
the containerd image store) are handed in, so every branch is unit-testable.

"auto" takes BuildKit only when both hold: buildx drives it, and the OCI exporter (the
route to reproducible digests, see :mod:`dlbase.engine.buildkit`) is refused by a daemon
on the classic image store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dlbase.core import errors

BUILDERS = ("auto", "buildkit", "classic")
BUILDKIT, CLASSIC = "buildkit", "classic"


@dataclass(frozen=True)
class BuilderChoice:
    name: str  # "buildkit" or "classic"
    requested: str  # what the caller asked for ("auto", "buildkit", "classic")
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def choose(requested: str, *, buildx: str | None, containerd_store: bool | None) -> BuilderChoice:
    """The builder for ``requested`` given ``buildx`` (its version line, None when absent)
    and ``containerd_store`` (None when unknown). An explicit "buildkit" that cannot work
    is a typed error with a hint, not a silent fall-back."""
    from dlbase.engine.buildkit import BUILDX_HINT, OCI_STORE_HINT

    if requested not in BUILDERS:
        raise errors.InvalidInput(f"unknown builder {requested!r}", hint=f"choose one of {', '.join(BUILDERS)}")
    if requested == CLASSIC:
        return BuilderChoice(CLASSIC, requested, "asked for the classic builder")
    if buildx is None:
        if requested == BUILDKIT:
            raise errors.Missing("BuildKit was asked for, but `docker buildx version` does not answer",
                                 hint=BUILDX_HINT)
        return BuilderChoice(CLASSIC, requested, "docker buildx is not installed: the classic builder")
    if containerd_store is False:
        if requested == BUILDKIT:
            raise errors.Missing("BuildKit was asked for, but the daemon does not use the containerd image store "
                                 "(where the image ID is the manifest digest a push keeps)", hint=OCI_STORE_HINT)
        return BuilderChoice(CLASSIC, requested,
                             "the daemon does not use the containerd image store: the classic builder")
    how = "asked for" if requested == BUILDKIT else "auto"
    return BuilderChoice(BUILDKIT, requested, f"{how}: BuildKit via {buildx}, containerd image store")
