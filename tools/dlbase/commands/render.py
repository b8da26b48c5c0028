"""`dlbase render`: write (or with --check, verify) every generated file."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase import render as render_mod
from dlbase import ui
from dlbase.commands.common import open_project, project_options


@click.command("render")
@click.option("--check", "check_only", is_flag=True,
              help="change nothing; exit 3 and show the diff when a committed file is stale")
@project_options
def command(check_only: bool, matrix_file: Path | None, compat_file: Path | None) -> None:
    """Render Dockerfiles, image facts, the bake file and the README tag table from templates."""
    project = open_project(matrix_file, compat_file)
    if check_only:
        render_mod.check(project)
        ui.info(f"all generated files match the templates ({len(project.matrix.variants)} variants)")
        return
    changed = render_mod.write(project)
    for path in changed:
        ui.info(f"wrote {project.rel(path)}")
    ui.info(f"{len(changed)} file(s) changed, {len(project.matrix.variants)} variants rendered")
