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
from typing import Any

from dlbase.core import errors

BUILDERS = ("auto", "buildkit", "classic")
BUILDKIT, CLASSIC = "buildkit", "classic"
#: The SLSA ``buildType`` of an image each builder made: the two run the same Dockerfile
#: with different semantics (BuildKit's OCI export gives reproducible digests, the classic
#: builder's do not), so a provenance must say which one it was.
BUILD_TYPES = {BUILDKIT: "https://dlbase.dev/build/buildkit/v1",
               CLASSIC: "https://dlbase.dev/build/docker-classic/v1"}
#: When the image's history names neither builder (an imported image, no Dockerfile step).
UNKNOWN_BUILD_TYPE = "https://dlbase.dev/build/unknown/v1"
#: The history comment BuildKit's Dockerfile frontend writes on every step it runs.
_BUILDKIT_COMMENT = "buildkit.dockerfile"


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


def built_by(history: list[dict[str, Any]]) -> str | None:
    """Which builder made an image, from its own history (``docker history``, newest
    first): its newest step was written by the builder that ran. BuildKit comments each
    step ``buildkit.dockerfile.v0``; the classic builder leaves the comment empty and
    records ``/bin/sh -c ...``. The image's own record, so it holds on any machine (a push
    in CI of an image built elsewhere has no build report). None when it names neither."""
    if not history:
        return None
    newest = history[0]
    comment, created_by = str(newest.get("Comment") or ""), str(newest.get("CreatedBy") or "")
    if comment.startswith(_BUILDKIT_COMMENT):
        return BUILDKIT
    if not comment and created_by.startswith("/bin/sh -c"):
        return CLASSIC
    return None


def build_type(builder: str | None) -> str:
    """The provenance ``buildType`` for ``builder`` (a name from :func:`built_by`)."""
    return BUILD_TYPES.get(builder or "", UNKNOWN_BUILD_TYPE)
