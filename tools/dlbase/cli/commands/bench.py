"""`dlbase bench`: benchmarks, written as JSON + a markdown table under .dlbase/bench/."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.cli.paths import PathParam
from dlbase.bench import build as bench_mod
from dlbase.bench import update as bench_update
from dlbase.image import local_image
from dlbase.cli import ui
from dlbase.core import validate
from dlbase.cli.commands.common import json_option, open_project, project_options, variant_spec
from dlbase.core.fileerrors import writable_dir
from dlbase.engine import Engine
from dlbase.engine.builderchoice import BUILDERS
from dlbase.core.errors import InvalidInput


@click.group("bench")
def command() -> None:
    """Benchmarks: image size and build time, measured side by side in one run."""


def _out_dir(project, *more: Path) -> Path:
    """Where the bench writes (and ``more`` places, such as --png's folder), checked before
    minutes of measuring rather than at the end."""
    out = project.state_dir / "bench"
    for place in (out, *more):
        writable_dir(place)
    return out


def _show(project, data: dict, table: str, written: tuple[Path, ...], as_json: bool) -> None:
    """A bench's one JSON document, or its table and the files it wrote."""
    if as_json:
        ui.emit_json(data)
    else:
        ui.out.print(table, markup=False)
        ui.info("written: " + ", ".join(project.rel(p) for p in written))


@command.command("build")
@click.argument("variant", required=False)
@click.option("--builder", type=click.Choice(BUILDERS), default="auto", show_default=True,
              help="the builder of the cold, rebuild, warm and naive builds; with BuildKit the classic builder's "
                   "cold build is measured beside it")
@click.option("--skip", "skip", multiple=True, type=click.Choice(bench_mod.SKIPPABLE),
              help="leave this part out (repeatable): the cold builds (both layer compressions) and the naive "
                   "one are always measured")
@project_options
@json_option
def build(variant: str | None, builder: str, skip: tuple[str, ...], matrix_file: Path | None,
          compat_file: Path | None, as_json: bool) -> None:
    """Cold build (the line's layer compression, then the other one), a second cold build
    (same digest?), warm rebuild, the classic builder's cold build and a naive single-stage
    build of VARIANT, side by side (tens of minutes)."""
    project = open_project(matrix_file, compat_file, writes_state=True)
    spec = variant_spec(project, variant)
    out = _out_dir(project)
    engine = Engine()
    engine.ping()
    result = bench_mod.run(project, spec, engine, say=ui.info, builder=builder, skip=skip)
    jpath, mpath, table = bench_mod.write(result, out)
    _show(project, result.to_dict(), table, (jpath, mpath), as_json)


@command.command("update")
@click.argument("variant", required=False)
@click.option("--notebook", "notebook_variant", default=None, metavar="VARIANT",
              help="the notebook variant built on top: its flavor extends VARIANT's, same base, torch and line "
                   "(default: the first such in the matrix)")
@click.option("--design", "designs", multiple=True, type=click.Choice(bench_update.DESIGNS),
              help="measure only this design (repeatable; default both, side by side)")
@click.option("--cold-rounds", type=click.IntRange(0, 5), default=1, show_default=True,
              help="extra cold builds of each design and of the naive Dockerfile, alternating (about 5 min a round)")
@click.option("--builder", type=click.Choice(BUILDERS), default="auto", show_default=True,
              help="the builder of every build of the run")
@project_options
@json_option
def update(variant: str | None, notebook_variant: str | None, designs: tuple[str, ...], cold_rounds: int,
           builder: str, matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Per-group layers vs one layer: a package update, a second flavor, registry bytes, build
    times (tens of minutes; needs PyPI for the re-lock and Debian's docker-registry)."""
    project = open_project(matrix_file, compat_file, writes_state=True)  # the wheelhouse, logs and results
    spec = variant_spec(project, variant)
    notebook = variant_spec(project, bench_update.notebook_for(project, spec, notebook_variant))
    out = _out_dir(project)
    bench_update.registry_binary()  # a missing tool, before the daemon is asked anything
    engine = Engine()
    engine.ping()
    result = bench_update.run(project, spec, notebook, engine, say=ui.info,
                              designs=tuple(designs) or bench_update.DESIGNS, cold_rounds=cold_rounds,
                              builder=builder)
    jpath, mpath, table = bench_update.write(result, out)
    _show(project, result.to_dict(), table, (jpath, mpath), as_json)


@command.command("compression")
@click.argument("image", required=False, metavar="[IMAGE_OR_VARIANT]")
@click.option("--rounds", type=click.IntRange(1, 5), default=2, show_default=True,
              help="cold pulls of each form, the order alternating")
@click.option("--other", default=None, metavar="IMAGE",
              help="the same image built with the other layer compression: both sides are then pushed as built "
                   "(without it the other side is converted, as `dlbase push --compression` does)")
@project_options
@json_option
def compression(image: str | None, rounds: int, other: str | None, matrix_file: Path | None,
                compat_file: Path | None, as_json: bool) -> None:
    """gzip vs zstd layers of IMAGE (default: the matrix's default variant): registry bytes,
    push seconds, cold pull-and-unpack seconds (minutes; needs docker-registry and containerd)."""
    from dlbase.bench import cold_pull
    from dlbase.bench import compression as bench_compression

    project = open_project(matrix_file, compat_file, writes_state=True)
    target = image or project.matrix.default
    validate.image_ref(target)
    out = _out_dir(project)
    bench_update.registry_binary()  # missing tools, before the daemon is asked anything
    cold_pull.tools()
    engine = Engine()
    engine.ping()
    if other is not None:
        validate.image_ref(other)
    result = bench_compression.run(project, engine, target, rounds=rounds, say=ui.info, other=other)
    jpath, mpath, table = bench_compression.write(result, out)
    _show(project, result.to_dict(), table, (jpath, mpath), as_json)


@command.command("data")
@click.argument("image", required=False, metavar="[IMAGE_OR_VARIANT]")
@click.option("--host-python", default=None, metavar="PYTHON",
              help="interpreter for the host side (default: dlbase's own); skipped with the reason when it "
                   "lacks torch, torchvision, albumentations or OpenCV")
@click.option("--no-host", is_flag=True, help="measure inside the image only")
@click.option("--workers", default=None, metavar="0,1,2", help="num_workers to try (default 0..cores)")
@click.option("--quick", is_flag=True, help="few samples: a smoke run, not a measurement")
@click.option("--rounds", type=click.IntRange(1, 10), default=1, show_default=True,
              help="alternate image and host this many times and keep the best of each (shared machines)")
@click.option("--png", type=PathParam(path_type=Path, dir_okay=False), default=None,
              help="where to write the plot (default next to the JSON under .dlbase/bench/)")
@json_option
def data(image: str | None, host_python: str | None, no_host: bool, workers: str | None, quick: bool,
         rounds: int, png: Path | None, as_json: bool) -> None:
    """The seed's data-pipeline claims, measured in IMAGE_OR_VARIANT (default: the matrix's
    default variant) and on the host: ms per image of its pipelines, Albumentations against
    torchvision v2, DataLoader images/s against num_workers, the preflight's cost."""
    from dlbase.bench import data as bench_data

    if workers is not None and not all(w.strip().isdigit() for w in workers.split(",")):
        raise InvalidInput(f"--workers {workers!r} is not a comma-separated list of counts", hint="e.g. --workers 0,1,2")
    if image is not None:
        validate.image_ref(image, where="IMAGE_OR_VARIANT")
    project = open_project(None, None, writes_state=True)
    out = _out_dir(project, *([png.absolute().parent] if png else []))
    engine = Engine()
    engine.ping()
    found = local_image.locate_ref(engine, image)
    ref = found.ref
    ui.info(f"measuring {ref} ({found.short_id})" + (f": {found.why}" if found.why else ""))
    result = bench_data.measure(project, engine, ref, host_python=host_python, host=not no_host, quick=quick,
                                workers=workers, rounds=rounds, say=ui.info)
    jpath, mpath, ppath, table = bench_data.write(result, out, png)
    if as_json:
        ui.emit_json({"ok": True, **result.to_dict(), "files": [str(p) for p in (jpath, mpath, ppath) if p]})
        return
    ui.out.print(table, markup=False)
    written = ", ".join(project.rel(p) if p.is_absolute() else str(p) for p in (jpath, mpath, ppath) if p)
    ui.info(f"written: {written}")
    if ppath is None:
        ui.warn("no PNG: matplotlib is not installed (pip install 'dlbase[bench]')")
