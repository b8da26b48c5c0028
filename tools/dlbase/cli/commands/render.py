"""`dlbase render`: write (or with --check, verify) every generated file."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.define import render as render_mod
from dlbase.cli import ui
from dlbase.cli.commands.common import json_option, open_project, project_options
from dlbase.cli.helptext import exits


@click.command("render")
@click.option("--check", "check_only", is_flag=True,
              help=exits("change nothing; exit {DRIFT} and show the diff when a committed file is stale"))
@project_options
@json_option
def command(check_only: bool, matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Render Dockerfiles, image facts, the bake file and the README tag table from templates.

    All or nothing: when one file cannot be written, none is changed."""
    project = open_project(matrix_file, compat_file)
    variants = len(project.matrix.variants)
    if check_only:
        render_mod.check(project)
        if as_json:
            ui.emit_json({"variants": variants, "stale": []})
        else:
            ui.info(f"all generated files match the templates ({variants} variants)")
        return
    changed = render_mod.write(project)
    if as_json:
        ui.emit_json({"variants": variants, "changed": [project.rel(p) for p in changed]})
        return
    for path in changed:
        ui.info(f"wrote {project.rel(path)}")
    ui.info(f"{len(changed)} file(s) changed, {variants} variants rendered")
