"""`dlbase bench build`: what the Dockerfile design buys, measured side by side in one run.

Builds of one variant on the same daemon, from the same base and the same wheels:
  cold     - the rendered Dockerfile, no layer cache, with the builder `dlbase build` picks
             (BuildKit where buildx and the containerd store are there) and the layer
             compression of the variant's line; where its seconds went (the steps, the
             exporter's compression, the unpack into the store) is read from its log;
  other    - the same with the other layer compression (zstd against gzip), BuildKit only;
  rebuild  - the same again, no layer cache: its digest against cold's is the
             reproducibility result (BuildKit; the classic builder's IDs always differ);
  warm     - the same again after a change to a file of the image's test suite (cache on):
             only the cheap layers after the heavy install should rebuild;
  classic  - the rendered Dockerfile with the classic builder, no layer cache (when the
             cold build was BuildKit's): what BuildKit costs or saves;
  naive    - a single-stage Dockerfile as a blog reader would write it (build tools, apt
             lists and pip cache kept), no layer cache, with the cold build's builder.
plus the payload: the installed Python environment plus the base image. Ratios come from
this one run, never from numbers measured elsewhere. ``skip`` leaves out rebuild, warm or
classic (each a few minutes) when only the cold builds are wanted.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from dlbase import suites
from dlbase.bench.common import BENCH_LABEL, fill_wheelhouse, remove_images
from dlbase.core import layercompression
from dlbase.build import builder as build_mod
from dlbase.define import render as render_mod
from dlbase.build import wheelhouse
from dlbase.engine import Engine
from dlbase.core.fsutil import write_text_atomic
from dlbase.define.project import Project
from dlbase.define.spec import LOCK_PLATFORM, BuildSpec

#: What a copy of the project needs to build, taken from the project.
COPY = ("images", "templates", "runtime", "README.md", ".dockerignore", "ci")
#: Where the copy holds the in-image suite (the Dockerfile COPYs it from there); its files
#: come from dlbase.suites, the one place the suites are found.
SUITE_IN_COPY = "tests/image"
_IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache")
#: The parts a run may leave out.
SKIPPABLE = ("rebuild", "warm", "classic")
# The engine's build log: "exporting layers done (245.1s)", "unpacking to moby-dangling@sha256:... done (31.0s)".
_PHASE_DONE = re.compile(r"^(exporting layers|unpacking to|naming to|exporting manifest|exporting config)\b.*? "
                         r"done \((\d+(?:\.\d+)?)s\)$", re.M)


def phase_seconds(log_text: str) -> dict[str, float]:
    """The exporter's phases of one BuildKit build log, in seconds ("exporting layers" is
    the layers' compression, "unpacking to" the unpack into the containerd store)."""
    found: dict[str, float] = {}
    for match in _PHASE_DONE.finditer(log_text):
        found[match[1]] = round(found.get(match[1], 0.0) + float(match[2]), 1)
    return found


@dataclass
class BuildBench:
    variant: str
    base_bytes: int
    venv_bytes: int
    payload_bytes: int
    image_bytes: int
    naive_bytes: int
    cold_seconds: float
    warm_seconds: float | None
    naive_seconds: float
    builder: str = "classic"
    classic_seconds: float | None = None     # the classic builder's cold build, when cold was BuildKit's
    rebuild_seconds: float | None = None
    digests: tuple[str, str] | None = None   # cold's and rebuild's image IDs (manifest digests under BuildKit)
    compression: str = layercompression.GZIP  # cold's layers (the line's)
    other_compression: str | None = None      # the other side's, when measured (BuildKit)
    other_seconds: float | None = None
    other_bytes: int | None = None
    cold_phases: dict | None = None           # where cold's seconds went after its steps (phase_seconds)
    other_phases: dict | None = None

    @property
    def identical(self) -> bool | None:
        return None if self.digests is None else self.digests[0] == self.digests[1]

    @property
    def ratios(self) -> dict[str, float | None]:
        def r(a: float | None, b: float | None, nd: int = 3) -> float | None:
            return round(a / b, nd) if a is not None and b else None
        return {
            "image_over_payload": round(self.image_bytes / self.payload_bytes, 3),
            "image_over_naive": round(self.image_bytes / self.naive_bytes, 3),
            "warm_over_cold": r(self.warm_seconds, self.cold_seconds, 4),
            "naive_over_cold_seconds": round(self.naive_seconds / self.cold_seconds, 3),
            "cold_over_naive_seconds": r(self.cold_seconds, self.naive_seconds),
            "cold_over_classic_seconds": r(self.cold_seconds, self.classic_seconds),
            "other_over_naive_seconds": r(self.other_seconds, self.naive_seconds),
            "cold_over_other_seconds": r(self.cold_seconds, self.other_seconds),
        }

    def to_dict(self) -> dict:
        body = asdict(self)
        body["digests"] = list(self.digests) if self.digests else None
        return {**body, "identical": self.identical, "ratios": self.ratios}


def copy_project(project: Project, dest: Path) -> Project:
    """A copy of the project to build in (its files can be edited without touching the
    real one), sharing the real wheelhouse."""
    for rel in COPY:
        src = project.root / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=_IGNORE)
        elif src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    shutil.copytree(suites.image_dir(), dest / SUITE_IN_COPY, ignore=_IGNORE)
    # Share the wheelhouse: the bench measures building, not downloading. The copy finds
    # the machine's cache by itself; a project with its own wheelhouse lends it by a link.
    own = project.root / wheelhouse.PROJECT_WHEELHOUSE
    if own.is_dir():
        (dest / own.relative_to(project.root)).parent.mkdir(parents=True, exist_ok=True)
        (dest / own.relative_to(project.root)).symlink_to(own.resolve())
    return Project.discover(dest)


def _venv_bytes(engine: Engine, image: str) -> int:
    res = engine.run(image, ["du", "-sb", "/opt/venv"], entrypoint=[], timeout=300,
                     labels={BENCH_LABEL: "du"})
    return int(res.output.split()[0])


def run(project: Project, spec: BuildSpec, engine: Engine, say: Callable[[str], None],
        builder: str = "auto", skip: tuple[str, ...] = ()) -> BuildBench:
    labels = {BENCH_LABEL: "true"}
    images: list[str] = []
    chosen = engine.choose_builder(builder).name
    with tempfile.TemporaryDirectory(prefix="dlbase-bench-") as tmp:
        copy = copy_project(project, Path(tmp) / "proj")
        say("filling the wheelhouse (not timed)")
        fill_wheelhouse(copy, spec)

        def timed(what: str, **kwargs) -> tuple[build_mod.BuildResult, float]:
            say(what)
            t = time.monotonic()
            result = build_mod.build(copy, spec, engine, tag=False, extra_labels=labels, **kwargs)
            images.append(result.image_id)
            return result, time.monotonic() - t

        try:
            other = other_s = None
            if chosen == "buildkit":
                # The other compression goes first and is removed before the line's own build:
                # whichever build comes second finds the layers already unpacked in the image
                # store (same diff IDs) and pays ~0.1 s for a phase that cost the first ~56 s
                # (measured 2026-12-07), which made the first one look slower than it is. With
                # the other image gone, each side pays its own unpack.
                flip = (layercompression.GZIP if spec.variant.compression == layercompression.ZSTD
                        else layercompression.ZSTD)
                other, other_s = timed(f"cold build ({chosen}, {flip} layers, no layer cache)", nocache=True,
                                       builder=chosen, compression=flip)
                # Its size is in the result: the image itself goes now, not at the end (a full
                # image is ~10 GB in the containerd store; four at once filled a shared disk).
                remove_images(engine, [other.image_id])
            cold, cold_s = timed(f"cold build ({chosen}, {spec.variant.compression} layers, no layer cache)",
                                 nocache=True, builder=chosen)
            rebuild_s = digests = None
            if chosen == "buildkit" and "rebuild" not in skip:
                again, rebuild_s = timed("second cold build (no layer cache): same digest?", nocache=True,
                                         builder=chosen)
                digests = (cold.image_id, again.image_id)
                if again.image_id != cold.image_id:  # the same digest is cold's own image: kept
                    remove_images(engine, [again.image_id])
            warm_s = None
            if "warm" not in skip:
                marker = copy.root / SUITE_IN_COPY / "conftest.py"
                marker.write_text(marker.read_text() + "\n# bench: touched\n")
                _warm, warm_s = timed("warm rebuild after editing a file of the image's test suite", builder=chosen)
            classic_s = None
            if chosen != "classic" and "classic" not in skip:
                _classic, classic_s = timed("cold build with the classic builder (no layer cache)", nocache=True,
                                            builder="classic")

            say(f"naive single-stage build ({chosen}, no layer cache)")
            naive_id, naive_s = naive_build(copy, spec, engine, Path(tmp) / "naive", labels, builder=chosen)
            images.append(naive_id)

            base_bytes = int(engine.inspect_image(cold.base_ref)["Size"])
            venv = _venv_bytes(engine, cold.image_id)
            return BuildBench(
                variant=spec.name, base_bytes=base_bytes, venv_bytes=venv, payload_bytes=base_bytes + venv,
                image_bytes=cold.size_bytes, naive_bytes=int(engine.inspect_image(naive_id)["Size"]),
                cold_seconds=round(cold_s, 1), warm_seconds=None if warm_s is None else round(warm_s, 1),
                naive_seconds=round(naive_s, 1),
                builder=chosen, classic_seconds=None if classic_s is None else round(classic_s, 1),
                rebuild_seconds=None if rebuild_s is None else round(rebuild_s, 1), digests=digests,
                compression=cold.compression, other_compression=other.compression if other else None,
                other_seconds=None if other_s is None else round(other_s, 1),
                other_bytes=other.size_bytes if other else None,
                cold_phases=_phases_of(cold), other_phases=_phases_of(other) if other else None)
        finally:
            remove_images(engine, images)


def _phases_of(result: build_mod.BuildResult) -> dict[str, float]:
    try:
        return phase_seconds(Path(result.log_file).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


def naive_build(copy: Project, spec: BuildSpec, engine: Engine, ctx: Path, labels: dict,
                builder: str = "classic") -> tuple[str, float]:
    ctx.mkdir()
    env = render_mod.environment(copy.templates_dir)
    base_ref = spec.variant.base.ref
    (ctx / "Dockerfile").write_text(env.get_template("bench/naive.Dockerfile.j2").render(
        base_ref=base_ref, python=spec.variant.python, variant=spec.name))
    shutil.copy(copy.variant_dir(spec.name) / "requirements.lock", ctx / "requirements.lock")
    shutil.copytree(copy.root / SUITE_IN_COPY, ctx / "tests", ignore=_IGNORE)
    house = wheelhouse.default_wheelhouse(spec.variant.python, LOCK_PLATFORM, root=copy.root)
    t = time.monotonic()
    with wheelhouse.serve(house, port=0) as url:  # no layer cache: any free port
        image_id = engine.build(ctx, buildargs={"WHEELHOUSE": url}, labels=labels, network_mode="host",
                                nocache=True, log_path=ctx / "build.log", builder=builder)
    return image_id, time.monotonic() - t


def _phase_text(phases: dict | None) -> str:
    if not phases:
        return ""
    return "; of which " + ", ".join(f"{name} {sec:.1f} s" for name, sec in phases.items()
                                      if name in ("exporting layers", "unpacking to"))


def write(bench: BuildBench, out_dir: Path) -> tuple[Path, Path, str]:
    """JSON + markdown table; returns both paths and the table text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = {"kind": "dlbase.bench.build", "time": stamp, **bench.to_dict()}
    jpath = out_dir / f"build-{stamp}.json"
    write_text_atomic(jpath, json.dumps(data, indent=2) + "\n")
    gb = lambda b: f"{b / 1e9:.2f} GB"  # noqa: E731
    r = bench.ratios
    rows = [
        ("image size (dlbase Dockerfile)", gb(bench.image_bytes), ""),
        ("payload (Python env + base)", gb(bench.payload_bytes),
         f"image / payload = {r['image_over_payload']}"),
        ("naive single-stage image", gb(bench.naive_bytes), f"image / naive = {r['image_over_naive']}"),
        (f"cold build ({bench.builder}, {bench.compression} layers, no cache)", f"{bench.cold_seconds:.1f} s",
         f"cold / naive = {r['cold_over_naive_seconds']}" + _phase_text(bench.cold_phases)),
    ]
    if bench.other_seconds is not None:
        rows.append((f"cold build ({bench.builder}, {bench.other_compression} layers, no cache)",
                     f"{bench.other_seconds:.1f} s",
                     f"{bench.other_compression} / naive = {r['other_over_naive_seconds']}; "
                     f"{bench.compression} / {bench.other_compression} = {r['cold_over_other_seconds']}"
                     + _phase_text(bench.other_phases)))
    if bench.warm_seconds is not None:
        rows.append(("warm rebuild (test file changed)", f"{bench.warm_seconds:.1f} s",
                     f"warm / cold = {r['warm_over_cold']}"))
    rows.append((f"naive build ({bench.builder}, BuildKit's default gzip, no cache)", f"{bench.naive_seconds:.1f} s",
                 f"naive / cold = {r['naive_over_cold_seconds']}"))
    if bench.classic_seconds is not None:
        rows.append(("cold build (classic builder, no cache)", f"{bench.classic_seconds:.1f} s",
                     f"{bench.builder} / classic = {r['cold_over_classic_seconds']}"))
    if bench.digests is not None:
        rows.append(("second cold build (no cache)", f"{bench.rebuild_seconds:.1f} s",
                     "same digest: " + ("yes" if bench.identical else "NO") + f" ({bench.digests[0][:19]}, "
                     f"{bench.digests[1][:19]})"))
    table = "| measure | value | ratio |\n|---|---|---|\n" + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    mpath = out_dir / f"build-{stamp}.md"
    write_text_atomic(mpath, f"# dlbase bench build: {bench.variant} ({stamp})\n\n{table}")
    return jpath, mpath, table
