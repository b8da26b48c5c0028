"""Differences between two images: labels, installed packages, files.

Packages and files come from :mod:`dlbase.image.snapshot` (the exported filesystem, hashed as
a stream); the paths in :data:`dlbase.image.snapshot.EXCLUDED` are skipped on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbase.core import imageref
from dlbase.image import snapshot
from dlbase.engine import Engine


@dataclass
class ImageDiff:
    a: str
    b: str
    a_id: str
    b_id: str
    groups: dict[str, snapshot.Changes]
    files_compared: tuple[int, int]

    @property
    def identical(self) -> bool:
        return all(c.empty for c in self.groups.values())

    def to_dict(self) -> dict:
        return {"a": {"ref": self.a, "image_id": self.a_id}, "b": {"ref": self.b, "image_id": self.b_id},
                "identical": self.identical, "files_compared": list(self.files_compared),
                "excluded_paths": snapshot.EXCLUDED,
                **{name.replace(" ", "_"): changes.to_dict() for name, changes in self.groups.items()}}


def labels_of(engine: Engine, image: str) -> tuple[str, dict[str, str]]:
    info = engine.inspect_image(image)
    return info["Id"], imageref.labels_of(info)


def diff_images(engine: Engine, a: str, b: str, *, labels: dict[str, str] | None = None,
                ignore_labels: tuple[str, ...] = ()) -> ImageDiff:
    a_id, a_labels = labels_of(engine, a)
    b_id, b_labels = labels_of(engine, b)
    for key in ignore_labels:
        a_labels.pop(key, None)
        b_labels.pop(key, None)
    snap_a = snapshot.take(engine, a_id, labels=labels)
    snap_b = snapshot.take(engine, b_id, labels=labels)
    groups = {"labels": snapshot.compare_maps(a_labels, b_labels)}
    groups.update(snapshot.compare(snap_a, snap_b))
    return ImageDiff(a=a, b=b, a_id=a_id, b_id=b_id, groups=groups,
                     files_compared=(snap_a.total_files, snap_b.total_files))
