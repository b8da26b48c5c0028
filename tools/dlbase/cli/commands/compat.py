"""`dlbase compat add torch==X.Y.Z`: write a release's compat.yaml entry from its wheels."""

from __future__ import annotations

from pathlib import Path

import click
from packaging.requirements import InvalidRequirement, Requirement

from dlbase.cli import ui
from dlbase.cli.commands.common import json_option, open_project, project_options
from dlbase.core import urlpolicy
from dlbase.core.errors import InvalidInput
from dlbase.define import compat_add


@click.group("compat")
def command() -> None:
    """The compatibility table (images/compat.yaml)."""


def _torch_version(text: str) -> str:
    """``torch==2.14.1`` (or ``2.14.1``) -> ``2.14.1``; anything else is exit 2 with the form to use."""
    spec = text if text.startswith("torch") else f"torch=={text}"
    try:
        req = Requirement(spec)
    except InvalidRequirement:
        req = None
    pins = [s.version for s in req.specifier if s.operator == "=="] if req is not None else []
    if req is None or req.name != "torch" or len(pins) != 1 or "*" in pins[0] or len(req.specifier) != 1:
        raise InvalidInput(f"'{text}' does not name one torch release", hint="write it like torch==2.14.1")
    return pins[0]


@command.command("add")
@click.argument("release")
@click.option("--index", "index_url", help="simple index to read the wheels from (default: compat.yaml's pypi)")
@click.option("--python", "python", help="read the wheels built for this Python (default: the newest)")
@click.option("--torchvision", help="pair this torchvision instead of the one its metadata pairs")
@click.option("--torchaudio", help="pair this torchaudio instead of the one its metadata pairs")
@click.option("--dry-run", is_flag=True, help="print the entry; write nothing")
@project_options
@json_option
def add(release: str, index_url: str | None, python: str | None, torchvision: str | None,
        torchaudio: str | None, dry_run: bool, matrix_file: Path | None, compat_file: Path | None,
        as_json: bool) -> None:
    """Read torch RELEASE's wheel metadata (and its torchvision/torchaudio pair's) from the
    index and write its entry into compat.yaml, each fact with its source."""
    torch = _torch_version(release)
    project = open_project(matrix_file, compat_file)
    index_url = urlpolicy.fetch_url(index_url or project.compat.indexes["pypi"],
                                    where="--index" if index_url else "compat.yaml's pypi index",
                                    example="https://pypi.org/simple")
    derived, changes = compat_add.run(project.compat_file, torch, index_url=index_url, python=python,
                                      torchvision=torchvision, torchaudio=torchaudio, dry_run=dry_run,
                                      say=None if as_json else ui.info)
    if as_json:
        ui.emit_json({"written": not dry_run, "file": project.rel(project.compat_file), "changes": changes,
                      "entry": derived.to_dict()})
        return
    entry = derived.to_dict()
    ui.table(["fact", "value", "source"],
             [[k, entry["lines"][derived.line][k], derived.sources.get(k, "")] for k in entry["lines"][derived.line]]
             + [["python", ", ".join(derived.python), derived.sources["python"]],
                ["torchvision", derived.torchvision, derived.sources["torchvision"]],
                ["torchaudio", derived.torchaudio or "none", derived.sources["torchaudio"]]],
             title=f"torch {derived.torch}, line {derived.line} (the PyPI default)")
    if dry_run:
        ui.info("dry run: nothing written")
    elif changes:
        ui.info(f"wrote {project.rel(project.compat_file)}: " + "; ".join(changes))
    else:
        ui.info(f"{project.rel(project.compat_file)} already says this")
