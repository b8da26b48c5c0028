"""`dlbase rebuild-check VARIANT`: two from-scratch builds must give the same content."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.build import reproduce
from dlbase.examine import snapshot
from dlbase.cli import ui
from dlbase.cli.commands._changes import print_changes
from dlbase.cli.commands.common import json_option, open_project, parse_labels, project_options, variant_spec
from dlbase.engine import Engine
from dlbase.core.errors import NotReproducible
from dlbase.cli.progress import BuildProgress


@click.command("rebuild-check")
@click.argument("variant", required=False)
@click.option("--keep", is_flag=True, help="keep both (untagged) images for inspection")
@click.option("--limit", default=40, show_default=True, help="rows listed per group in the table")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="extra label on both builds")
@project_options
@json_option
def command(variant: str | None, keep: bool, limit: int, labels: tuple[str, ...], matrix_file: Path | None,
            compat_file: Path | None, as_json: bool) -> None:
    """Build VARIANT twice without layer cache and compare the installed packages (with
    hashes) and a digest of every file. Exit 0 when they match, 13 when they differ.

    Excluded paths (they legitimately vary) are listed by `--json` and in docs/failures.md.
    """
    extra = parse_labels(labels)
    project = open_project(matrix_file, compat_file, writes_state=True)
    spec = variant_spec(project, variant)
    engine = Engine()
    engine.ping()
    progress = BuildProgress(quiet=as_json)
    result = reproduce.rebuild_check(project, spec, engine, on_event=progress.event, say=progress.say,
                                     extra_labels=extra, keep=keep)
    if as_json:
        ui.emit_json({"ok": result.reproducible, **result.to_dict()})
    else:
        ui.table(["variant", "build 1", "build 2", "files compared", "result"],
                 [[result.variant, f"{result.image_ids[0][:19]} ({result.build_seconds[0]:.0f}s)",
                   f"{result.image_ids[1][:19]} ({result.build_seconds[1]:.0f}s)",
                   "/".join(str(n) for n in result.diff.files_compared),
                   "pass: identical" if result.reproducible else "fail: differs"]], status_column="result")
        ui.info("excluded (legitimately vary): " + ", ".join(sorted(snapshot.EXCLUDED)))
        if not result.reproducible:
            print_changes(result.diff.groups, limit=limit)
    if not result.reproducible:
        counts = {k: len(c.added) + len(c.removed) + len(c.changed) for k, c in result.diff.groups.items()}
        error = NotReproducible(f"{result.variant}: two from-scratch builds differ ("
                                + ", ".join(f"{k}: {n}" for k, n in counts.items() if n) + ")",
                                hint="see the listing above; Debian packages differ only if the mirror changed")
        raise error  # under --json the CLI merges it into the result: one document
