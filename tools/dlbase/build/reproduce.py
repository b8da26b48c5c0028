"""`rebuild-check`: build a variant twice from scratch and compare what came out.

Both builds run with ``nocache`` (no layer of the first is reused by the second), are
never tagged and skip the version read-back (the comparison is the check here; the
read-back would refuse test images without torch). Both use the same wheelhouse, so
the Python wheels are byte-identical inputs; Debian packages come from Debian's mirror
at build time and can differ between the two builds only if the mirror published an
update in between -- then the "debian packages" group names them.

What is compared: the installed Python distributions (name, version, sha256 of RECORD,
which lists the hash of every installed file), the Debian packages, and a digest of
every file (content, mode, owner, link target), except :data:`snapshot.EXCLUDED`.
Labels are listed too, except the ones that identify a single build.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from dlbase.build import builder as build_mod
from dlbase.examine import diff as diff_mod
from dlbase.examine import snapshot
from dlbase.engine import BuildEvent, Engine
from dlbase.build.wheelhouse import FillEvent
from dlbase.core.project import Project
from dlbase.define.spec import BuildSpec

# Labels that name one build and so always differ.
PER_BUILD_LABELS = ("dlbase.build-id", "dlbase.rebuild-check")


@dataclass
class RebuildResult:
    variant: str
    image_ids: tuple[str, str]
    build_seconds: tuple[float, float]
    diff: diff_mod.ImageDiff
    seconds: float

    @property
    def reproducible(self) -> bool:
        return self.diff.identical

    def to_dict(self) -> dict:
        return {"variant": self.variant, "reproducible": self.reproducible, "image_ids": list(self.image_ids),
                "build_seconds": list(self.build_seconds), "seconds": self.seconds,
                **{k: v for k, v in self.diff.to_dict().items() if k not in ("a", "b", "identical")}}


def rebuild_check(project: Project, spec: BuildSpec, engine: Engine, *,
                  on_event: Callable[[BuildEvent | FillEvent], None] | None = None,
                  say: Callable[[str], None] = lambda _m: None,
                  extra_labels: dict[str, str] | None = None, keep: bool = False) -> RebuildResult:
    """Two no-cache builds, a snapshot of each, the grouped differences. Both images are
    removed afterwards (they carry no tag) unless ``keep``."""
    started = time.monotonic()
    run = str(uuid.uuid4())
    images: list[str] = []
    seconds: list[float] = []
    try:
        for n in (1, 2):
            say(f"build {n} of 2 of {spec.name}, without layer cache")
            result = build_mod.build(project, spec, engine, on_event=on_event, say=say, nocache=True,
                                     tag=False, check_versions=False,
                                     extra_labels={**(extra_labels or {}), "dlbase.rebuild-check": f"{run}/{n}"})
            images.append(result.image_id)
            seconds.append(result.seconds)
        say("exporting both images' filesystems and hashing every file")
        found = diff_mod.diff_images(engine, images[0], images[1], labels=extra_labels,
                                     ignore_labels=PER_BUILD_LABELS)
    finally:
        if not keep:
            for image_id in reversed(images):
                with contextlib.suppress(Exception):
                    engine.remove_image(image_id, force=True)
    return RebuildResult(variant=spec.name, image_ids=(images[0], images[1]),
                         build_seconds=(seconds[0], seconds[1]), diff=found,
                         seconds=round(time.monotonic() - started, 1))


def excluded_paths() -> dict[str, str]:
    return dict(snapshot.EXCLUDED)
