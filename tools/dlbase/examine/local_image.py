"""The one resolver from what a user types to an image on the local daemon.

`verify`, `push` and `report` all accept "a variant name, an image reference or an image
ID". A variant means its moving tag in the matrix's repository (the newest build of it);
anything else is handed to the daemon as it is.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from dlbase.core import imageref
from dlbase.engine import Engine
from dlbase.core.errors import DlbaseError, InvalidInput, Missing
from dlbase.core.project import Project
from dlbase.define.spec import BuildSpec


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
        return self.spec.name if self.spec else self.labels.get("dlbase.variant")


def variant_ref(project: Project, spec: BuildSpec) -> str:
    """The reference a variant's newest build carries: ``repository:moving-tag``."""
    return f"{project.matrix.repository}:{spec.moving_tag}"


def locate(project: Project, engine: Engine, name: str | None, *, hint: str | None = None) -> LocatedImage:
    """A variant name (no name: the matrix's default variant), an image reference or an
    image ID -> the local image. Missing (with ``hint``, or a default one) when absent."""
    spec: BuildSpec | None = None
    variant_names = {v.name for v in project.matrix.variants}
    by_variant = name is None or name in variant_names
    if by_variant:
        variant = project.matrix.get(name) if name else project.matrix.default_variant
        spec = BuildSpec.of(project.compat, variant)
        ref = variant_ref(project, spec)
        if not engine.image_exists(ref):
            raise Missing(f"variant {variant.name} has no image on this daemon ({ref})",
                          hint=hint or f"build it first: `dlbase build {variant.name}`")
    else:
        ref = str(name)
    try:
        inspect = engine.inspect_image(ref)
    except Missing:
        raise Missing(f"no image {ref!r} on this daemon",
                      hint=hint or "give a variant, a tag, a reference or an image ID") from None
    label = imageref.labels_of(inspect).get("dlbase.variant")
    if spec is None and label in variant_names:
        with contextlib.suppress(DlbaseError):
            spec = BuildSpec.of(project.compat, project.matrix.get(label))
    return LocatedImage(ref=ref, image_id=inspect["Id"], inspect=inspect, spec=spec, by_variant=by_variant)


def locate_ref(engine: Engine, name: str | None) -> str:
    """Like :func:`locate`, for verbs that also work outside a project (`run`, `bench data`):
    a variant of the project found from here (its moving tag; no name: the default variant),
    else any image reference or ID the daemon has."""
    try:
        project = Project.discover()
    except (DlbaseError, OSError):  # no project here, or a parent folder this user cannot read
        project = None
    if project is not None and (name is None or name in {v.name for v in project.matrix.variants}):
        return locate(project, engine, name).ref
    if name is None:
        raise InvalidInput("no image named and no dlbase project here to take the default variant from",
                           hint="dlbase run IMAGE [-- COMMAND]")
    engine.inspect_image(name)  # Missing, with the daemon's words, when there is no such image
    return name
