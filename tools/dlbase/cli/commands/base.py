"""`dlbase base`: the locally bootstrapped base images for machines with no registry."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.build import base as base_mod
from dlbase.cli import ui
from dlbase.core import validate
from dlbase.core.errors import InvalidInput
from dlbase.cli.commands.common import json_option, open_project, project_options
from dlbase.engine import Engine


@click.group("base")
def command() -> None:
    """Manage base images built on this machine (Debian 12 or 13 via debootstrap)."""


@command.command("bootstrap")
@click.option("--base", "base_key", default=None,
              help="the matrix's bootstrap base to make (default: the default variant's, debian12)")
@click.option("--all", "every", is_flag=True,
              help="every bootstrap base the matrix names (what `make base` runs), one after another")
@click.option("--force", is_flag=True, help="rebuild even when the image exists")
@click.option("--mirror", default=base_mod.DEFAULT_MIRROR, show_default=True, help="Debian mirror")
@project_options
@json_option
def bootstrap(base_key: str | None, every: bool, force: bool, mirror: str, matrix_file: Path | None,
              compat_file: Path | None, as_json: bool) -> None:
    """debootstrap Debian (minbase) and import it under the matrix base's name; idempotent."""
    validate.index_url(mirror, what="--mirror", example=base_mod.DEFAULT_MIRROR)  # a malformed mirror: exit 2 before anything starts
    if every and base_key is not None:
        raise InvalidInput("--all and --base name different sets of bases",
                           hint="give --base KEY for one base or --all for every bootstrap base, not both")
    targets: list[dict[str, str]] = [{}]
    if base_key is not None or every:
        bases = open_project(matrix_file, compat_file).matrix.bases
        boot = sorted(k for k, b in bases.items() if b.source == "bootstrap")
        if every:
            keys = boot
        else:
            chosen = bases.get(base_key)
            if chosen is None or chosen.source != "bootstrap":
                raise InvalidInput(f"'{base_key}' is not a bootstrap base of the matrix",
                                   hint=f"bootstrap bases: {', '.join(boot) or '(none)'}")
            keys = [base_key]
        targets = [{"repository": bases[k].image, "tag": bases[k].tag, "suite": bases[k].suite or base_mod.DEFAULT_SUITE}
                   for k in keys]
    engine = Engine()
    engine.ping()
    images = [base_mod.bootstrap(engine, force=force, mirror=mirror, say=None if as_json else ui.info, **target)
              for target in targets]
    if as_json:
        rows = [{"ref": image.ref, "image_id": image.image_id, "digest": image.digest_like,
                 "layer": image.layer, "created": image.created} for image in images]
        ui.emit_json({"bases": rows} if every else rows[0])
    else:
        ui.table(["image", "image ID (its digest here)", "created now"],
                 [[image.ref, image.image_id, "yes" if image.created else "no (reused)"] for image in images])
