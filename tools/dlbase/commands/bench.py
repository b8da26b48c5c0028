"""`dlbase bench`: benchmarks, written as JSON + a markdown table under .dlbase/bench/."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase import bench as bench_mod
from dlbase import bench_update
from dlbase import ui
from dlbase.commands.common import json_option, open_project, project_options, variant_spec
from dlbase.engine import Engine
from dlbase.errors import InvalidInput


@click.group("bench")
def command() -> None:
    """Benchmarks: image size and build time, measured side by side in one run."""


@command.command("build")
@click.argument("variant", required=False)
@project_options
@json_option
def build(variant: str | None, matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Cold build, warm rebuild and a naive single-stage build of VARIANT (minutes)."""
    project = open_project(matrix_file, compat_file)
    spec = variant_spec(project, variant)
    engine = Engine()
    engine.ping()
    result = bench_mod.run(project, spec, engine, say=ui.info)
    jpath, mpath, table = bench_mod.write(result, project.state_dir / "bench")
    if as_json:
        ui.emit_json(result.to_dict())
    else:
        ui.out.print(table, markup=False)
        ui.info(f"written: {project.rel(jpath)}, {project.rel(mpath)}")


@command.command("update")
@click.argument("variant", required=False)
@click.option("--notebook", "notebook_variant", default=None, metavar="VARIANT",
              help="the flavor built on top (default: the first variant whose flavor extends VARIANT's, same base)")
@click.option("--design", "designs", multiple=True, type=click.Choice(bench_update.DESIGNS),
              help="measure only this design (repeatable; default both, side by side)")
@project_options
@json_option
def update(variant: str | None, notebook_variant: str | None, designs: tuple[str, ...], matrix_file: Path | None,
           compat_file: Path | None, as_json: bool) -> None:
    """Per-group layers vs one layer: a package update, a second flavor, registry bytes, build
    times (tens of minutes; needs PyPI for the re-lock and Debian's docker-registry)."""
    project = open_project(matrix_file, compat_file)
    spec = variant_spec(project, variant)
    if notebook_variant is None:
        kids = [v for v in project.matrix.variants if v.flavor.extends == spec.variant.flavor.name
                and v.base.key == spec.variant.base.key and v.torch == spec.variant.torch
                and v.line == spec.variant.line]
        if not kids:
            raise InvalidInput(f"no variant extends {spec.name}'s flavor on its base",
                               hint="name one with --notebook VARIANT")
        notebook_variant = kids[0].name
    notebook = variant_spec(project, notebook_variant)
    engine = Engine()
    engine.ping()
    result = bench_update.run(project, spec, notebook, engine, say=ui.info,
                              designs=tuple(designs) or bench_update.DESIGNS)
    jpath, mpath, table = bench_update.write(result, project.state_dir / "bench")
    if as_json:
        ui.emit_json(result.to_dict())
    else:
        ui.out.print(table, markup=False)
        ui.info(f"written: {project.rel(jpath)}, {project.rel(mpath)}")
