"""`dlbase layers IMAGE`: one row per layer: group, size, packages, paths shadowing a lower layer."""

from __future__ import annotations

import click

from dlbase.examine import imagelayers
from dlbase.cli import ui
from dlbase.cli.commands.common import json_option
from dlbase.engine import Engine
from dlbase.core.errors import DlbaseError, ExitCode
from dlbase.cli.helptext import exits

class Shadowing(DlbaseError):
    """A package layer rewrites (or deletes) a path of a lower layer."""

    exit_code = ExitCode.FAILED


@click.command("layers")
@click.argument("image")
@click.option("--strict", is_flag=True,
              help=exits("exit {FAILED} when a package layer shadows a path of a lower layer (want: none)"))
@json_option
def command(image: str, strict: bool, as_json: bool) -> None:
    """List IMAGE's layers, lowest first (reads `docker save`; a 6 GB image takes a minute)."""
    engine = Engine()
    engine.ping()
    if not as_json:
        ui.info(f"reading the layers of {image} (docker save, streamed)")
    with engine.saved_image(image) as stream:
        rows = imagelayers.analyse(stream)
    bad = [r for r in rows if r.shadowed and imagelayers.is_package_layer(r)]
    total = sum(r.size_bytes for r in rows)
    if as_json:
        ui.emit_json({"ok": not (strict and bad), "image": image, "total_bytes": total,
                      "layers": [r.to_dict() for r in rows]})
    else:
        ui.table(["#", "group", "size", "packages", "shadows", "step"],
                 [[r.index, r.group, _size(r.size_bytes), r.packages or "",
                   (f"{r.shadowed}: " + ", ".join(r.shadow_examples)) if r.shadowed else "none", r.step]
                  for r in rows], title=f"{image}: {len(rows)} layers, {_size(total)}")
    if strict and bad:
        if as_json:
            raise click.exceptions.Exit(int(ExitCode.FAILED))
        raise Shadowing(f"{len(bad)} package layer(s) rewrite paths of a lower layer",
                        details=[f"layer {r.index} ({r.group}): {', '.join(r.shadow_examples)}" for r in bad],
                        hint="a higher layer must not touch a lower layer's files (byte-code, pip's "
                             "shared files, namespace __init__.py): see templates/partials/python_env.j2")


def _size(n: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n} B"
