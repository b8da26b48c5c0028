"""`dlbase pin`: resolve base image digests from their registries into the matrix."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.define import pin as pin_mod
from dlbase.define import render as render_mod
from dlbase.cli import ui
from dlbase.cli.commands.common import json_option, open_project, project_options, registry_client
from dlbase.core.errors import Unreachable


@click.command("pin")
@click.argument("bases", nargs=-1)
@project_options
@json_option
def command(bases: tuple[str, ...], matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Resolve each registry base tag to its digest and write it into the matrix, then re-render."""
    project = open_project(matrix_file, compat_file)
    pin_mod.check_names(project.matrix, list(bases))  # before any registry is asked
    results = pin_mod.resolve(project.matrix, list(bases), client_for=registry_client)
    before = project.matrix_file.read_bytes()
    changed = pin_mod.write(project.matrix_file, project.rel(project.matrix_file), results)
    if changed:
        fresh = type(project).discover(project.root, project.matrix_file, project.compat_file)
        try:
            render_mod.write(fresh)
        except BaseException:
            # all or nothing: a digest in the matrix without the Dockerfiles that use it is half-done
            project.matrix_file.write_bytes(before)
            raise
    if as_json:
        ui.emit_json({"changed": changed, "bases": [{**r.__dict__, "status": r.status} for r in results]})
    else:
        ui.table(["base", "reference", "digest", "status"],
                 [[r.base, r.reference, r.new or r.old or "-", r.status + (f": {r.error}" if r.error else "")]
                  for r in results], status_column="status")
    failed = [r for r in results if r.error]
    if failed:
        raise Unreachable(f"{len(failed)} base(s) could not be resolved and stay as they were",
                          hint="run `dlbase pin` where those registries can be reached; "
                               "`dlbase check` warns while a base is unpinned")
