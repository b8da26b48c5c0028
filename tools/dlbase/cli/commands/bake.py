"""`dlbase bake`: build variants with `docker buildx bake` (ci/docker-bake.hcl), served and
checked as `dlbase build` does; images verify and push as `dlbase build`'s do."""

from __future__ import annotations

import re
from pathlib import Path

import click

from dlbase.cli.paths import PathParam
from dlbase.build import bake as bake_mod
from dlbase.cli import ui
from dlbase.cli.commands.common import json_option, open_project, parse_labels, project_options
from dlbase.cli.phases import plain_phase
from dlbase.cli.progress import BuildProgress
from dlbase.core import validate
from dlbase.engine import Engine

# Without --verbose: each step as it starts, cache hits and errors (bake's plain progress).
_SHOWN = re.compile(r"^(#\d+ (\[|CACHED|ERROR)|ERROR)")


@click.command("bake")
@click.argument("targets", nargs=-1)
@click.option("--cache-from", "cache_from", multiple=True, metavar="SPEC",
              help="a buildx cache source per target, e.g. type=registry,ref=REG/REPO:buildcache-{variant} "
                   "({variant}/{target} are filled in; repeatable)")
@click.option("--cache-to", "cache_to", multiple=True, metavar="SPEC",
              help="a buildx cache export per target, e.g. type=registry,ref=REG/REPO:buildcache-{variant},mode=max "
                   "(needs a builder that exports cache: docker-container, or this containerd-store daemon)")
@click.option("--no-cache", "nocache", is_flag=True, help="rebuild every step")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="extra image label (repeatable)")
@click.option("--repository", default=None, metavar="REPO", help="tag into REPO instead of the matrix's repository")
@click.option("--wheelhouse", "wheelhouse_dir", type=PathParam(path_type=Path, file_okay=False), default=None,
              help="serve this folder of wheels as it is instead of filling the default one in "
                   "~/.cache/dlbase (docs/cache.md)")
@click.option("--quiet", "-q", is_flag=True, help="no progress; print only the result")
@click.option("--verbose", "-v", is_flag=True, help="show every line of bake's output")
@project_options
@json_option
def command(targets: tuple[str, ...], cache_from: tuple[str, ...], cache_to: tuple[str, ...], nocache: bool,
            labels: tuple[str, ...], repository: str | None, wheelhouse_dir: Path | None, quiet: bool,
            verbose: bool, matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Bake TARGETS (variants, or the bake file's groups `default`/`all`; none: `default`):
    all built in one BuildKit run, each read back and tagged only when it matches."""
    extra = parse_labels(labels)
    if repository is not None:
        validate.repository(repository)
    project = open_project(matrix_file, compat_file, writes_state=True)
    progress = BuildProgress(quiet=quiet or as_json, verbose=verbose)
    engine = Engine()

    def line(text: str) -> None:
        phase = plain_phase(text)
        if phase is not None:  # the exporter's phases: ticked while open, their seconds when done
            progress.wheels_done()
            name, ended = phase
            progress.phase_end(name) if ended else progress.phase(name)
            if not verbose:
                return
        if verbose or _SHOWN.match(text):
            progress.wheels_done()
            progress.say(f"  {text[:200]}")

    try:
        results = bake_mod.bake(project, engine, list(targets), on_line=line, on_event=progress.event,
                                say=progress.say, extra_labels=extra, repository=repository,
                                cache_from=list(cache_from), cache_to=list(cache_to), nocache=nocache,
                                wheelhouse_dir=wheelhouse_dir)
    finally:
        progress.close()
    if as_json:
        ui.emit_json({"ok": True, "results": [r.to_dict() for r in results]})
        return
    ui.table(["variant", "image ID", "tags", "size", "lock hash"],
             [[r.variant, r.image_id[:19], "\n".join(r.tags), f"{r.size_bytes / 1e9:.2f} GB", r.lock_hash]
              for r in results])
    ui.info(f"log: {results[0].log_file}" + "".join(f"\nreport: {r.report_file}" for r in results))
