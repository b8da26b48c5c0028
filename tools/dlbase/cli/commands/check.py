"""`dlbase check`: validate the matrix, or one version combination, against compat.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.define import layering
from dlbase.define import release_checks
from dlbase.cli import ui
from dlbase.define.compat import StackResult, check_stack
from dlbase.cli.commands.common import json_option, open_project, project_options
from dlbase.core.errors import Incompatible
from dlbase.define.spec import check_variant
from dlbase.vuln import vex
from dlbase.cli.helptext import with_exit_codes

COLUMNS = ["variant", "torch", "torchvision", "torchaudio", "CUDA line", "cuDNN", "Python",
           "min driver", "status"]


def _row(r: StackResult) -> list[str | None]:
    line = f"{r.line} ({r.cuda})" if r.line else (f"CUDA {r.cuda}" if r.cuda else None)
    driver = f">= {r.minor_floor} (full {r.min_driver})" if r.min_driver else None
    audio = r.torchaudio or ("none" if r.torchvision else None)  # a release no torchaudio pairs with
    return [r.name, r.torch, r.torchvision, audio, line, r.cudnn, r.python, driver, r.status]


@click.command("check")
@click.option("--torch", help="check this torch release instead of the matrix")
@click.option("--torchvision", help="torchvision release to check beside --torch")
@click.option("--torchaudio", help="torchaudio release to check beside --torch")
@click.option("--cuda", help="CUDA version the stack should run on (12.4, 12.4.1 or cu124)")
@click.option("--python", "python", help="Python version (3.11)")
@click.option("--variant", "variants", multiple=True, help="check only this variant (repeatable)")
@click.option("--wheels", is_flag=True,
              help="also compare each variant's release with its wheels' metadata on PyPI (network)")
@project_options
@json_option
@with_exit_codes
def command(torch: str | None, torchvision: str | None, torchaudio: str | None, cuda: str | None,
            python: str | None, variants: tuple[str, ...], wheels: bool, matrix_file: Path | None,
            compat_file: Path | None, as_json: bool) -> None:
    """Check versions against the compatibility table (exit {INVALID_INPUT} when incompatible)."""
    project = open_project(matrix_file, compat_file)
    if torch is None and (torchvision or torchaudio or cuda or python):
        raise click.UsageError("--torchvision/--torchaudio/--cuda/--python need --torch")
    if torch is not None:
        results = [check_stack(project.compat, torch=torch, torchvision=torchvision,
                               torchaudio=torchaudio, cuda=cuda, python=python)]
    else:
        results = []
        read: dict[str, list] = {}
        for v in project.matrix.select(list(variants)):
            res = check_variant(project.compat, v)
            res.findings.extend(layering.findings(project, v))  # packages no layer rule takes
            res.findings.extend(release_checks.variant_findings(project, v))  # pairs, licences
            if wheels:
                res.findings.extend(release_checks.wheel_findings(project, v, read))
            results.append(res)

    ok = all(r.ok for r in results)
    # The team's VEX statements: a malformed one, or one naming no variant, is invalid input (exit 2).
    statements = vex.load_dir(project.root / vex.DEFAULT_DIR, products=vex.known_products(project.matrix)) if torch is None else []
    if as_json:
        ui.emit_json({"ok": ok, "results": [r.to_dict() for r in results], "vex_statements": len(statements)})
    else:
        ui.table(COLUMNS, [_row(r) for r in results], status_column="status")
        for r in results:
            for f in r.findings:
                line = f"{r.name}: {f.field}: {f.message}"
                if f.suggestion:
                    line += f"\n    -> {f.suggestion}"
                (ui.warn if f.severity == "warning" else ui.err.print)(line)
        if statements:
            ui.info(f"{len(statements)} VEX statement(s) in {vex.DEFAULT_DIR}: valid")
    if not ok:
        bad = [r.name for r in results if not r.ok]
        raise Incompatible(f"incompatible: {', '.join(bad)}",
                           hint="use the versions each finding suggests (after '->' in the list, 'suggestion' "
                                "under --json)")
