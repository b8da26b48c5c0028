"""`dlbase report IMAGE`: what dlbase knows about an image, as a table or JSON."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.examine import report as report_mod
from dlbase.cli import ui
from dlbase.core import validate
from dlbase.cli.commands.common import json_option, open_project, project_options
from dlbase.engine import Engine


@click.command("report")
@click.argument("image")
@click.option("--packages/--no-packages", default=True, help="list every installed Python distribution")
@project_options
@json_option
def command(image: str, packages: bool, matrix_file: Path | None, compat_file: Path | None, as_json: bool) -> None:
    """Print the report of IMAGE (tag, reference or ID): variant, tags, repo digests, size,
    lock hash, base, build time, versions, verification, pushes, packages."""
    validate.image_ref(image)
    project = open_project(matrix_file, compat_file)
    engine = Engine()
    engine.ping()
    body = report_mod.load(project, engine, image)
    if as_json:
        ui.emit_json(body)
        return
    base = body.get("base") or {}
    versions = body.get("versions") or {}
    verification = body.get("verification") or {}
    rows = [
        ["variant", body.get("variant")],
        ["image ID", body.get("image_id")],
        ["tags", "\n".join(body.get("tags") or []) or "(none)"],
        ["repo digests", "\n".join(body.get("repo_digests") or []) or "(none)"],
        ["size", f"{(body.get('size_bytes') or 0) / 1e9:.2f} GB"],
        ["lock hash", body.get("lock_hash")],
        ["base", f"{base.get('ref')} @ {base.get('digest')}"],
        ["build time", f"{body['build_seconds']:.0f}s" if body.get("build_seconds") else "unknown"],
        ["versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None)],
        ["verification", verification.get("status")],
        ["pushes", "\n".join(f"{p['pushed_at']} {p['registry']}" + (" (forced)" if p.get("forced") else "")
                             for p in body.get("pushes") or []) or "(none)"],
        ["sbom", body.get("sbom_file") or "(none)"],
        ["vulnerabilities", _scan_line(body.get("scan"))],
    ]
    ui.table(["field", "value"], rows, title=f"report of {image}", status_column="value")
    if packages and body.get("packages"):
        ui.table(["package", "version"], sorted(body["packages"].items(), key=lambda kv: kv[0].lower()),
                 title=f"{len(body['packages'])} Python distributions")


def _scan_line(scan: dict | None) -> str:
    """Counts of the last `dlbase scan` (open, then before VEX), with its database's date."""
    if not scan:
        return "never scanned (`dlbase scan IMAGE --db DIR`)"
    counts = ", ".join(f"{n} {k.lower()}" for k, n in (scan.get("counts") or {}).items() if n) or "none"
    return (f"{counts} open; {scan.get('vex_applied', 0)} answered by VEX "
            f"(scanned {scan.get('scanned_at')}, database of {scan.get('database_newest')})")
