"""The one resolver from what a user types to an image on the local daemon.

`verify`, `push`, `report`, `scan` and the attestation steps accept "a variant name, an image
reference or an image ID"; `run` and `bench data` accept the same and also work outside a
project. A variant means its moving tag in the matrix's repository (the newest build of it)
when the daemon has it; otherwise the image :func:`dlbase.image.image_choice.choose` picks
among those carrying its ``dlbase.variant`` label (the matrix's repository first; images of
several repositories are refused, not guessed between). Anything else is handed to the
daemon as it is.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from dlbase.core import imageref
from dlbase.engine import Engine
from dlbase.core.errors import DlbaseError, InvalidInput, Missing
from dlbase.define.project import Project
from dlbase.define.spec import VARIANT_LABEL, BuildSpec
from dlbase.image import image_choice


@dataclass(frozen=True)
class LocatedImage:
    """An image found on the daemon, with the variant it belongs to when that is known
    (the name was a variant, or the image's ``dlbase.variant`` label names one)."""

    ref: str
    image_id: str
    inspect: dict[str, Any]
    spec: BuildSpec | None
    by_variant: bool  # the name given was a variant and ref is its moving tag
    why: str | None = None  # how a variant name led to this image, when it did

    @property
    def short_id(self) -> str:
        return imageref.short_id(self.image_id)

    @property
    def labels(self) -> dict[str, str]:
        return imageref.labels_of(self.inspect)

    @property
    def variant(self) -> str | None:
        return self.spec.name if self.spec else self.labels.get(VARIANT_LABEL)


def variant_ref(project: Project, spec: BuildSpec) -> str:
    """The reference a variant's newest build carries: ``repository:moving-tag``."""
    return f"{project.matrix.repository}:{spec.moving_tag}"


def variant_image(engine: Engine, variant: str, *, project: Project | None) -> image_choice.Choice | None:
    """The image the name of ``variant`` means on this daemon, or None when none is of it:
    the matrix's moving tag when the daemon has it, else :func:`image_choice.choose` among the
    images labelled with the variant (a pulled image carries the label; no matrix needed)."""
    preferred = project.matrix.repository if project is not None else None
    if project is not None and variant in {v.name for v in project.matrix.variants}:
        ref = variant_ref(project, BuildSpec.of(project.compat, project.matrix.get(variant)))
        with contextlib.suppress(Missing):
            image_id = engine.inspect_image(ref)["Id"]
            return image_choice.Choice(ref, image_id, f"the moving tag of {variant}")
    summaries = engine.images_with_label(f"{VARIANT_LABEL}={variant}", intermediate=False)
    return image_choice.choose(variant, summaries, preferred=preferred)


def locate(project: Project, engine: Engine, name: str | None, *, hint: str | None = None) -> LocatedImage:
    """A variant name (no name: the matrix's default variant), an image reference or an
    image ID -> the local image. A variant is resolved by :func:`variant_image`; Missing
    (with ``hint``, or "build it") when nothing of it is on the daemon, and
    :class:`~dlbase.image.image_choice.AmbiguousImage` when images of several other
    repositories carry its label."""
    spec: BuildSpec | None = None
    variant_names = {v.name for v in project.matrix.variants}
    why = None
    if name is None or name in variant_names:
        variant = project.matrix.get(name) if name else project.matrix.default_variant
        spec = BuildSpec.of(project.compat, variant)
        chosen = variant_image(engine, variant.name, project=project)
        if chosen is None:
            raise Missing(f"variant {variant.name} has no image on this daemon ({variant_ref(project, spec)})",
                          hint=hint or f"build it first: `dlbase build {variant.name}`")
        ref, why = chosen.ref, chosen.why
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
    by_variant = spec is not None and why is not None and ref == variant_ref(project, spec)
    return LocatedImage(ref=ref, image_id=inspect["Id"], inspect=inspect, spec=spec, by_variant=by_variant, why=why)


def locate_ref(engine: Engine, name: str | None) -> LocatedImage:
    """Like :func:`locate`, for verbs that also work outside a project (`run`, `bench data`).

    A variant name means the image :func:`variant_image` picks: the project's moving tag
    when a project is found from here, else by the variant label, preferring the matrix's
    repository (no checkout needed: `cd ~/my-project && dlbase run VARIANT`). No name: the
    project's default variant. Anything else is an image reference or ID the daemon must have."""
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
        return locate(project, engine, name)  # Missing, with "build it", when nothing of it exists
    chosen = variant_image(engine, name, project=project)
    ref = chosen.ref if chosen is not None else name
    try:
        inspect = engine.inspect_image(ref)
    except Missing:
        raise Missing(f"no image {name!r} on the Docker daemon at {engine.endpoint} (no reference or ID of "
                      "that name, and no image built from a variant of that name)",
                      hint="pull it (`dlbase pull REF` or `docker pull REF`), or give a reference "
                           "`docker images` lists; from dlbase's checkout `dlbase build VARIANT` makes one") from None
    return LocatedImage(ref=ref, image_id=inspect["Id"], inspect=inspect, spec=None, by_variant=False,
                        why=chosen.why if chosen is not None else None)
