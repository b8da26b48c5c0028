"""`dlbase diff IMAGE_A IMAGE_B`: labels, packages and files that differ."""

from __future__ import annotations

import click

from dlbase.examine import diff as diff_mod
from dlbase.cli import ui
from dlbase.core import validate
from dlbase.cli.commands._changes import print_changes
from dlbase.cli.commands.common import json_option
from dlbase.engine import Engine
from dlbase.cli.helptext import with_exit_codes


@click.command("diff")
@click.argument("image_a")
@click.argument("image_b")
@click.option("--limit", default=40, show_default=True, help="rows listed per group in the table")
@json_option
@with_exit_codes
def command(image_a: str, image_b: str, limit: int, as_json: bool) -> None:
    """Compare two local images: labels, Python and Debian packages (added, removed,
    changed versions) and every file (added, removed, changed). Exit {OK} either way."""
    validate.image_ref(image_a, where="IMAGE_A")
    validate.image_ref(image_b, where="IMAGE_B")
    engine = Engine()
    engine.ping()
    found = diff_mod.diff_images(engine, image_a, image_b)
    if as_json:
        ui.emit_json({"ok": True, **found.to_dict()})
        return
    ui.info(f"A = {image_a} ({found.a_id[:19]}), B = {image_b} ({found.b_id[:19]}); "
            f"{found.files_compared[0]} / {found.files_compared[1]} paths compared")
    if found.identical:
        ui.info("no differences")
        return
    print_changes(found.groups, limit=limit)
