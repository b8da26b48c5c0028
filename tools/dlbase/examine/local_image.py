"""The one resolver from what a user types to an image on the local daemon.

`verify`, `push` and `report` all accept "a variant name, an image reference or an image
ID". A variant means its moving tag in the matrix's repository (the newest build of it);
anything else is handed to the daemon as it is. Verbs that also work without a checkout
(`run`, `bench data`) find a variant's image by its ``dlbase.variant`` label instead.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from dlbase.core import imageref
from dlbase.engine import Engine
from dlbase.core.errors import DlbaseError, InvalidInput, Missing
from dlbase.core.project import Project
from dlbase.define.spec import VARIANT_LABEL, BuildSpec


@dataclass(frozen=True)
class LocatedImage:
    """An image found on the daemon, with the variant it belongs to when that is known
    (the name was a variant, or the image's ``dlbase.variant`` label names one)."""

    ref: str
    image_id: str
    inspect: dict[str, Any]
    spec: BuildSpec | None
    by_variant: bool  # the name given was a variant (so ref is its moving tag)

    @property
    def labels(self) -> dict[str, str]:
        return imageref.labels_of(self.inspect)

    @property
    def variant(self) -> str | None:
        return self.spec.name if self.spec else self.labels.get(VARIANT_LABEL)


def variant_ref(project: Project, spec: BuildSpec) -> str:
    """The reference a variant's newest build carries: ``repository:moving-tag``."""
    return f"{project.matrix.repository}:{spec.moving_tag}"


def variant_images(engine: Engine, variant: str) -> list[str]:
    """References of the images on the daemon built from ``variant`` (their ``dlbase.variant``
    label), best first (:func:`best_first`). Needs no matrix: a pulled image carries the label."""
    return best_first(engine.images_with_label(f"{VARIANT_LABEL}={variant}", intermediate=False))


def best_first(summaries: list[dict[str, Any]]) -> list[str]:
    """Image summaries (``docker images``) -> references, tagged before untagged, then newest:
    a tagged one by its first tag, an untagged one by its ID."""

    def tags(summary: dict[str, Any]) -> list[str]:
        return [t for t in summary.get("RepoTags") or [] if t != imageref.NO_TAG]

    ordered = sorted(summaries, key=lambda s: (not tags(s), -int(s.get("Created") or 0)))
    return [(tags(s) or [s["Id"]])[0] for s in ordered]


def _named_elsewhere(refs: list[str]) -> str:
    shown = ", ".join(refs[:3]) + (f" (and {len(refs) - 3} more)" if len(refs) > 3 else "")
    return f"images of it are on this daemon under other names: {shown}; give one of them"


def locate(project: Project, engine: Engine, name: str | None, *, hint: str | None = None) -> LocatedImage:
    """A variant name (no name: the matrix's default variant), an image reference or an
    image ID -> the local image. Missing (with ``hint``, or a default one) when absent; a
    variant whose moving tag is absent but which has images under other names (pulled from a
    registry, built untagged) is told so, not told to build."""
    spec: BuildSpec | None = None
    variant_names = {v.name for v in project.matrix.variants}
    by_variant = name is None or name in variant_names
    if by_variant:
        variant = project.matrix.get(name) if name else project.matrix.default_variant
        spec = BuildSpec.of(project.compat, variant)
        ref = variant_ref(project, spec)
        if not engine.image_exists(ref):
            elsewhere = variant_images(engine, variant.name)
            raise Missing(f"variant {variant.name} has no image on this daemon ({ref})",
                          hint=_named_elsewhere(elsewhere) if elsewhere else
                          hint or f"build it first: `dlbase build {variant.name}`")
    else:
        ref = str(name)
    try:
        inspect = engine.inspect_image(ref)
    except Missing:
        raise Missing(f"no image {ref!r} on this daemon",
                      hint=hint or "give a variant, a tag, a reference or an image ID") from None
    label = imageref.labels_of(inspect).get(VARIANT_LABEL)
    if spec is None and label in variant_names:
        with contextlib.suppress(DlbaseError):
            spec = BuildSpec.of(project.compat, project.matrix.get(label))
    return LocatedImage(ref=ref, image_id=inspect["Id"], inspect=inspect, spec=spec, by_variant=by_variant)


def locate_ref(engine: Engine, name: str | None) -> str:
    """Like :func:`locate`, for verbs that also work outside a project (`run`, `bench data`).

    A variant name means its newest image: the project's moving tag when a project is found
    from here and the daemon has it, else the best image labelled with that variant (no
    checkout needed: `cd ~/my-project && dlbase run VARIANT`). No name: the project's default
    variant. Anything else is an image reference or ID the daemon must have."""
    try:
        project = Project.discover()
    except (DlbaseError, OSError):  # no project here, or a parent folder this user cannot read
        project = None
    if name is None:
        if project is None:
            raise InvalidInput("no image named and no dlbase project here to take the default variant from",
                               hint="dlbase run IMAGE_OR_VARIANT [-- COMMAND]")
        name = project.matrix.default_variant.name
    in_matrix = project is not None and name in {v.name for v in project.matrix.variants}
    if project is not None and in_matrix:
        ref = variant_ref(project, BuildSpec.of(project.compat, project.matrix.get(name)))
        if engine.image_exists(ref):
            return ref
    labelled = variant_images(engine, name)
    if labelled:
        return labelled[0]
    if project is not None and in_matrix:
        return locate(project, engine, name).ref  # Missing, with "build it" (nothing of it exists)
    if not engine.image_exists(name):
        raise Missing(f"no image {name!r} on the Docker daemon at {engine.endpoint} (no reference or ID of "
                      "that name, and no image built from a variant of that name)",
                      hint="pull it (`dlbase pull REF` or `docker pull REF`), or give a reference "
                           "`docker images` lists; from dlbase's checkout `dlbase build VARIANT` makes one")
    return name
