"""`dlbase bench`: benchmarks, written as JSON + a markdown table under .dlbase/bench/."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase import bench as bench_mod
from dlbase import ui
from dlbase.commands.common import json_option, open_project, project_options, variant_spec
from dlbase.engine import Engine


@click.group("bench")
def command() -> None:
    """Benchmarks: image size and build time, measured side by side in one run."""


@command.command("build")
@click.argument("variant", required=False)
@project_options
@json_option
def build(variant: str | None, matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Cold build, warm rebuild and a naive single-stage build of VARIANT (minutes)."""
    project = open_project(matrix_file, compat_file, writes_state=True)
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
