"""`dlbase build`: build a variant on the local daemon, read it back, tag it, report it."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.cli.paths import PathParam
from dlbase.build import builder as build_mod
from dlbase.define import render as render_mod
from dlbase.cli import ui
from dlbase.core import validate
from dlbase.cli.commands.common import json_option, open_project, parse_labels, project_options, variant_spec
from dlbase.engine import Engine
from dlbase.engine.builderchoice import BUILDERS
from dlbase.cli.progress import BuildProgress


@click.command("build")
@click.argument("variant", required=False)
@click.option("--no-cache", "nocache", is_flag=True, help="rebuild every layer")
@click.option("--quiet", "-q", is_flag=True, help="no progress; print only the result")
@click.option("--verbose", "-v", is_flag=True, help="show every line of the build output")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="extra image label (repeatable), e.g. a CI run ID")
@click.option("--wheelhouse", "wheelhouse_dir", type=PathParam(path_type=Path, file_okay=False), default=None,
              help="serve this folder of wheels as it is instead of filling the default one in ~/.cache/dlbase "
                   "(docs/cache.md; no download; pip's --require-hashes checks every wheel)")
@click.option("--repository", default=None, metavar="REPO",
              help="tag into REPO instead of the matrix's repository (a staging repository, a test run)")
@click.option("--cache-from", "cache_from", multiple=True, metavar="REF",
              help="use a published image's layers as cache (classic: pulled when not on this daemon; BuildKit: a "
                   "registry cache such as HOST/REPO:cache; repeatable): only the layer groups that changed are "
                   "rebuilt, the others keep their digests")
@click.option("--builder", type=click.Choice(BUILDERS), default="auto", show_default=True,
              help="BuildKit (docker buildx; reproducible OCI digests) or the classic builder; auto takes "
                   "BuildKit where buildx and the containerd image store are there")
@click.option("--cache-to", "cache_to", default=None, metavar="REF",
              help="BuildKit: export the layer cache to the registry cache REF (e.g. HOST/REPO:cache, mode=max); "
                   "read it back on another machine with --cache-from REF")
@click.option("--record-size", is_flag=True,
              help="write the image's size into images/sizes.json and re-render the README tag table")
@project_options
@json_option
def command(variant: str | None, nocache: bool, quiet: bool, verbose: bool, labels: tuple[str, ...],
            repository: str | None, record_size: bool, cache_from: tuple[str, ...], builder: str,
            cache_to: str | None,
            wheelhouse_dir: Path | None, matrix_file: Path | None,
            compat_file: Path | None, as_json: bool) -> None:
    """Build VARIANT (default: the matrix's default) and tag it after reading it back."""
    extra = parse_labels(labels)
    if repository is not None:
        validate.repository(repository)  # checked before the build, not at tagging time
    project = open_project(matrix_file, compat_file, writes_state=True)
    spec = variant_spec(project, variant)
    progress = BuildProgress(quiet=quiet or as_json, verbose=verbose)
    engine = Engine()
    progress.say(f"building {spec.name} on {engine.endpoint}")
    try:
        result = build_mod.build(project, spec, engine, on_event=progress.event,
                                 say=progress.say, nocache=nocache, extra_labels=extra,
                                 wheelhouse_dir=wheelhouse_dir, repository=repository,
                                 cache_from=list(cache_from), builder=builder, cache_to=cache_to)
    finally:
        progress.flush_step()
        progress.close()
    if record_size:
        render_mod.record_size(project, result.variant, result.size_bytes, result.lock_hash)
        render_mod.write(project)
    if as_json:
        ui.emit_json({"ok": True, **result.to_dict()})
        return
    ui.table(["variant", "image ID", "tags", "size", "build time", "builder", "lock hash"],
             [[result.variant, result.image_id[:19], "\n".join(result.tags), f"{result.size_bytes / 1e9:.2f} GB",
               f"{result.seconds:.0f}s", result.builder.get("name", ""), result.lock_hash]])
    ui.info(f"log: {result.log_file}\nreport: {result.report_file}")
