"""`rebuild-check`: build a variant twice from scratch and compare what came out.

Both builds run without layer cache (BuildKit's ``--no-cache``: every step runs again,
nothing of the first build is reused by the second), are never tagged and skip the
version read-back (the comparison is the check here; the read-back would refuse test
images without torch). Both use the same wheelhouse, so the Python wheels are
byte-identical inputs; Debian packages come from Debian's mirror at build time and can
differ between the two builds only if the mirror published an update in between.

With BuildKit (the default where it is there) the answer is the image manifest digest:
``SOURCE_DATE_EPOCH`` is the commit time, timestamps are rewritten to it and the
templates leave nothing run-dependent in the layers, so two builds of one commit give
one digest -- reproducible, nothing excluded. Each build is `dlbase build`'s own
(:func:`dlbase.build.builder.build`, its inputs from :mod:`dlbase.build.inputs`: labels,
build-id, build arguments, epoch, wheelhouse port; the second build serves the wheelhouse
where the first did), so the digest is the one `dlbase build` gives for the commit -- the
one `push` published, which `--attest` vouches for -- when the extra ``--label`` values are
the build's too. Only when the digests differ are both
images read (:mod:`dlbase.examine.layerdiff`) to say which layer differs, the step that
made it, which files in it and why, and which Debian package versions moved.

With the classic builder (``--builder classic``: engines without buildx) layer digests
differ on every build, so the exported filesystems are compared file by file instead,
except :data:`snapshot.EXCLUDED` (the daemon's per-container files, and what the classic
builder cannot make fixed).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Callable

from dlbase.build import builder as build_mod
from dlbase.build.wheelhouse import FillEvent
from dlbase.define.project import Project
from dlbase.define.spec import BuildSpec
from dlbase.engine import BUILD_ID_LABEL, BuildEvent, Engine
from dlbase.examine import diff as diff_mod
from dlbase.examine import layerdiff
from dlbase.image import snapshot

# Labels that name one build and so always differ (classic path: ignored in the comparison).
PER_BUILD_LABELS = (BUILD_ID_LABEL, "dlbase.rebuild-check")
CHECK_LABEL = "dlbase.rebuild-check"


@dataclass
class RebuildResult:
    """What `rebuild-check` found; :meth:`to_dict` is what `--json` and the "rebuilt
    identical" attestation read."""

    variant: str
    builder: str  # "buildkit" or "classic"
    image_ids: tuple[str, str]
    #: BuildKit: the image manifest digests (the image IDs under the containerd store);
    #: classic: the image IDs (config digests), which differ on every build.
    digests: tuple[str, str]
    build_seconds: tuple[float, float]
    seconds: float
    source_date_epoch: int | None
    revision: str
    #: The port both builds served the wheelhouse on: its URL is in the image history.
    wheelhouse_port: int | None = None
    layers: layerdiff.ImageDiff | None = None  # BuildKit, only when the digests differ
    diff: diff_mod.ImageDiff | None = None  # classic: the file-by-file comparison

    @property
    def reproducible(self) -> bool:
        if self.builder == "buildkit":
            return self.digests[0] == self.digests[1]
        return self.diff is not None and self.diff.identical

    @property
    def excluded_paths(self) -> dict[str, str]:
        """Paths left out of the comparison: none when digests are compared."""
        return {} if self.builder == "buildkit" else dict(snapshot.EXCLUDED)

    def to_dict(self) -> dict:
        body = {"variant": self.variant, "reproducible": self.reproducible, "builder": self.builder,
                "digests": list(self.digests), "image_ids": list(self.image_ids),
                "source_date_epoch": self.source_date_epoch, "revision": self.revision,
                "build_seconds": list(self.build_seconds), "seconds": self.seconds,
                "wheelhouse_port": self.wheelhouse_port,
                "compared": "manifest digest" if self.builder == "buildkit" else "files",
                "excluded_paths": self.excluded_paths}
        if self.layers is not None:
            found = self.layers.to_dict()
            body.update(config=found["config"], layers=found["layers"], layer_counts=found["layer_counts"])
        if self.diff is not None:
            body.update({k: v for k, v in self.diff.to_dict().items()
                         if k not in ("a", "b", "identical", "excluded_paths")})
        return body


def rebuild_check(project: Project, spec: BuildSpec, engine: Engine, *,
                  on_event: Callable[[BuildEvent | FillEvent], None] | None = None,
                  say: Callable[[str], None] = lambda _m: None,
                  extra_labels: dict[str, str] | None = None, keep: bool = False,
                  builder: str = "auto") -> RebuildResult:
    """Two no-cache builds; their digests (BuildKit) or file snapshots (classic) compared.
    Both images are removed afterwards unless ``keep``, except one that was on the daemon
    before or that a tag names (the image `dlbase build` made, rebuilt identical)."""
    started = time.monotonic()
    choice = engine.choose_builder(builder)
    run = str(uuid.uuid4())
    port: int | None = None  # the first build's, asked for by the second
    results: list[build_mod.BuildResult] = []
    # The rebuilt image can be one that was here before (`dlbase build` made and tagged it):
    # only an image these builds made, which nothing tags, is removed afterwards.
    existed = engine.image_ids()
    try:
        for n in (1, 2):
            say(f"build {n} of 2 of {spec.name} with {choice.name}, without layer cache")
            if choice.name == "buildkit":  # exactly `dlbase build`'s inputs: its labels and build-id
                labels = dict(extra_labels or {})
            else:
                labels = {**(extra_labels or {}), CHECK_LABEL: f"{run}/{n}"}
            results.append(build_mod.build(project, spec, engine, on_event=on_event, say=say, nocache=True,
                                           tag=False, check_versions=False, extra_labels=labels,
                                           builder=choice.name, wheelhouse_port=port))
            port = results[-1].wheelhouse_port
        images = [r.image_id for r in results]
        common = dict(variant=spec.name, builder=choice.name, image_ids=(images[0], images[1]),
                      build_seconds=(results[0].seconds, results[1].seconds),
                      source_date_epoch=results[0].source_date_epoch, revision=results[0].revision or "unknown",
                      wheelhouse_port=port)
        if choice.name == "buildkit":
            digests = (images[0], images[1])
            layers = None
            if digests[0] != digests[1]:
                say("the digests differ: reading both images' layers to find where")
                layers = diff_layers(engine, images[0], images[1])
            return RebuildResult(**common, digests=digests, layers=layers,
                                 seconds=round(time.monotonic() - started, 1))
        say("exporting both images' filesystems and hashing every file")
        found = diff_mod.diff_images(engine, images[0], images[1], labels=extra_labels,
                                     ignore_labels=PER_BUILD_LABELS)
        return RebuildResult(**common, digests=(images[0], images[1]), diff=found,
                             seconds=round(time.monotonic() - started, 1))
    finally:
        if not keep:
            engine.remove_made([r.image_id for r in reversed(results)], existed, force=True)


def diff_layers(engine: Engine, a: str, b: str) -> layerdiff.ImageDiff:
    """Both images read from the daemon (`docker save`: the OCI layout, blobs as built)."""
    read = []
    for image in (a, b):
        with engine.saved_image(image) as stream:
            read.append(layerdiff.read_layout(stream))
    return layerdiff.diff_images(read[0], read[1])


def excluded_paths() -> dict[str, str]:
    """What the classic builder's file comparison leaves out (BuildKit's digests: nothing)."""
    return dict(snapshot.EXCLUDED)
