"""`dlbase lint`: hadolint on every rendered Dockerfile; warnings and above fail (exit 4)."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.cli.paths import PathParam
from dlbase.core import fileerrors
from dlbase.define import lint as lint_mod
from dlbase.cli import ui
from dlbase.cli.commands.common import json_option, open_project, project_options
from dlbase.core.errors import LintFailed


@click.command("lint")
@click.argument("files", nargs=-1, type=PathParam(path_type=Path))
@project_options
@json_option
def command(files: tuple[Path, ...], matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Run hadolint on the rendered Dockerfiles (ignored rules: .hadolint.yaml)."""
    project = open_project(matrix_file, compat_file)
    targets = list(files) or [project.variant_dir(v.name) / "Dockerfile" for v in project.matrix.variants]
    missing = [str(t) for t in targets if not fileerrors.is_file(t, what="Dockerfile")]
    if missing:
        raise LintFailed(f"not rendered: {', '.join(missing)}", hint="run `dlbase render` first")
    findings = lint_mod.lint(targets, project.root / ".hadolint.yaml")
    blocking = [f for f in findings if f.blocking]
    if as_json:
        ui.emit_json({"ok": not blocking, "files": [project.rel(t) for t in targets],
                      "findings": [f.__dict__ for f in findings]})
    elif findings:
        ui.table(["file", "line", "rule", "level", "message"],
                 [[project.rel(Path(f.file)), f.lineno, f.code, f.level, f.message] for f in findings],
                 status_column="level")
    if blocking:
        raise LintFailed(f"hadolint: {len(blocking)} finding(s) at warning level or above",
                         hint="fix the template, or list the rule in .hadolint.yaml with the reason")
    ui.info(f"hadolint: {len(targets)} Dockerfile(s), no finding at warning level or above"
            + (f" ({len(findings)} below it)" if findings else ""))
