"""`dlbase base`: the locally bootstrapped base image for machines with no registry."""

from __future__ import annotations

import click

from dlbase.build import base as base_mod
from dlbase.cli import ui
from dlbase.core import validate
from dlbase.cli.commands.common import json_option
from dlbase.engine import Engine


@click.group("base")
def command() -> None:
    """Manage base images built on this machine (Debian 12 via debootstrap)."""


@command.command("bootstrap")
@click.option("--force", is_flag=True, help="rebuild even when the image exists")
@click.option("--mirror", default=base_mod.DEFAULT_MIRROR, show_default=True, help="Debian mirror")
@json_option
def bootstrap(force: bool, mirror: str, as_json: bool) -> None:
    """debootstrap Debian 12 (minbase) and import it as dlbase/debian:12-minbase; idempotent."""
    validate.index_url(mirror, what="--mirror", example=base_mod.DEFAULT_MIRROR)  # a malformed mirror: exit 2 before anything starts
    engine = Engine()
    engine.ping()
    image = base_mod.bootstrap(engine, force=force, mirror=mirror,
                               say=None if as_json else ui.info)
    if as_json:
        ui.emit_json({"ref": image.ref, "image_id": image.image_id, "digest": image.digest_like,
                      "layer": image.layer, "created": image.created})
    else:
        ui.table(["image", "image ID (its digest here)", "created now"],
                 [[image.ref, image.image_id, "yes" if image.created else "no (reused)"]])
