"""`dlbase lock`: resolve (or with --check, verify) each variant's hash-pinned lock."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase import layering
from dlbase import lock as lock_mod
from dlbase import render as render_mod
from dlbase import ui
from dlbase.commands.common import json_option, open_project, project_options
from dlbase.errors import Drift, DlbaseError, Unreachable
from dlbase.spec import BuildSpec, lock_spec


@click.command("lock")
@click.argument("variants", nargs=-1)
@click.option("--check", "check_only", is_flag=True,
              help="resolve nothing; exit 3 when a lock is missing or stale against the matrix/compat data")
@click.option("--upgrade", is_flag=True, help="resolve afresh instead of keeping the current pins")
@project_options
@json_option
def command(variants: tuple[str, ...], check_only: bool, upgrade: bool, matrix_file: Path | None,
            compat_file: Path | None, as_json: bool) -> None:
    """Resolve images/<variant>/requirements.lock with hashes, for the image's Python and platform.

    Variants whose wheel index cannot be reached from here are reported as "not lockable
    here" and do not fail the run; any other problem does.
    """
    project = open_project(matrix_file, compat_file)
    rows: list[dict] = []
    failures: list[DlbaseError] = []
    # Parents first: a flavor that extends another is resolved with the parent's lock as constraints.
    for variant in sorted(project.matrix.select(list(variants)), key=lambda v: v.flavor.extends is not None):
        spec = BuildSpec.of(project.compat, variant)
        lspec = lock_spec(spec, layering.parent_constraints(project, variant))
        path = project.variant_dir(spec.name) / "requirements.lock"
        row = {"variant": spec.name, "index": spec.index_url, "lock": project.rel(path), "packages": None,
               "lock_hash": None, "status": "", "message": ""}
        try:
            if check_only:
                try:
                    lock = lock_mod.check_lock(lspec, path)
                except Drift:
                    if path.is_file():
                        raise
                    # No lock at all: fine only when this machine could not have made one.
                    for url in lspec.index_urls:
                        lock_mod.probe_index(url, variant=spec.name)
                    raise
                row.update(status="current", packages=len(lock.packages), lock_hash=lock_mod.lock_hash(path))
            else:
                ui.info(f"resolving {spec.name} (python {lspec.python_version}, {lspec.platform}, index {spec.index_url})")
                res = lock_mod.compile_lock(lspec, path, upgrade=upgrade)
                for out in render_mod.subset_outputs(project, spec):  # the per-layer subsets follow the lock
                    render_mod.write_atomic(out.path, out.content)
                row.update(status="locked", packages=len(res.packages), lock_hash=res.lock_hash,
                           message=f"{res.seconds:.1f}s")
        except Unreachable as exc:
            row.update(status="not lockable here", message=exc.message)
        except DlbaseError as exc:
            row.update(status="failed" if not isinstance(exc, Drift) else "stale", message=exc.message)
            failures.append(exc)
        rows.append(row)
    if as_json:
        ui.emit_json({"ok": not failures, "variants": rows})
    else:
        ui.table(["variant", "status", "packages", "lock hash", "note"],
                 [[r["variant"], r["status"], r["packages"], r["lock_hash"], r["message"]] for r in rows],
                 status_column="status")
    if failures:
        first = failures[0]
        first.details = [f.message for f in failures[1:]] + first.details
        raise first
