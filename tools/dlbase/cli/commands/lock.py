"""`dlbase lock`: resolve (or with --check, verify) each variant's hash-pinned lock."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.core import fileset
from dlbase.define import layering
from dlbase.define import lock as lock_mod
from dlbase.define import render as render_mod
from dlbase.cli import ui
from dlbase.cli.commands.common import json_option, open_project, project_options
from dlbase.core.errors import Drift, DlbaseError, Unreachable
from dlbase.define.spec import INSTALLER_LOCK, INSTALLER_LOCK_NAME, BuildSpec, installer_lock_spec, lock_spec
from dlbase.cli.helptext import exits, with_exit_codes


@click.command("lock")
@click.argument("variants", nargs=-1)
@click.option("--check", "check_only", is_flag=True,
              help=exits("resolve nothing; exit {DRIFT} when a lock is missing or stale against the matrix/compat data"))
@click.option("--upgrade", is_flag=True, help="resolve afresh instead of keeping the current pins")
@project_options
@json_option
@with_exit_codes
def command(variants: tuple[str, ...], check_only: bool, upgrade: bool, matrix_file: Path | None,
            compat_file: Path | None, as_json: bool) -> None:
    """Resolve images/<variant>/requirements.lock with hashes, for the image's Python and platform.

    With no VARIANTS, variants whose wheel index cannot be reached from here are reported as
    "not lockable here" and do not fail the run; a variant named on the command line whose
    index cannot be reached fails it (exit {UNREACHABLE}). Any other problem fails it too.
    --check also verifies each lock itself: it parses to the end, its content matches the
    hash in its header, and it pins every package the variant names.
    The installer lock (images/_build/installer.lock, the uv each layer RUN fetches) is
    checked on every run and re-resolved when stale or missing; name it as `installer`.
    """
    project = open_project(matrix_file, compat_file)
    rows: list[dict] = []
    failures: list[DlbaseError] = []
    installer_named = INSTALLER_LOCK_NAME in variants
    variants = tuple(v for v in variants if v != INSTALLER_LOCK_NAME)
    if installer_named and not variants:  # `dlbase lock installer`: that lock alone
        _installer_row(project, check_only, upgrade, rows, failures)
        _finish(rows, failures, as_json)
        return
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
                    lock = lock_mod.check_lock(lspec, path, complete=True)
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
                subsets = render_mod.subset_outputs(project, spec)  # the per-layer subsets follow the lock
                fileset.commit([fileset.Change(o.path, o.content) for o in subsets
                                if render_mod._current(o.path) != o.content])
                row.update(status="locked", packages=len(res.packages), lock_hash=res.lock_hash,
                           message=f"{res.seconds:.1f}s")
        except Unreachable as exc:
            row.update(status="not lockable here", message=exc.message)
            if variants:  # named on purpose: an index that cannot be reached is a failure (exit 5)
                row["status"] = "unreachable"
                failures.append(exc)
        except DlbaseError as exc:
            row.update(status="failed" if not isinstance(exc, Drift) else "stale", message=exc.message)
            failures.append(exc)
        rows.append(row)
    _installer_row(project, check_only, installer_named and upgrade, rows, failures)
    _finish(rows, failures, as_json)


def _installer_row(project, check_only: bool, upgrade: bool, rows: list[dict],
                   failures: list[DlbaseError]) -> None:  # project: dlbase.define.project.Project
    """Check the installer lock; unless --check, re-resolve it when it is stale or missing
    (a current one is left alone: no network for a lock that names one exact pin)."""
    lspec = installer_lock_spec(project.matrix)
    if lspec is None:
        return
    path = project.root / INSTALLER_LOCK
    row = {"variant": INSTALLER_LOCK_NAME, "index": lspec.index_url, "lock": INSTALLER_LOCK, "packages": None,
           "lock_hash": None, "status": "", "message": ""}
    try:
        lock = None
        if not upgrade:
            try:
                lock = lock_mod.check_lock(lspec, path, complete=True)
                row.update(status="current", packages=len(lock.packages), lock_hash=lock_mod.lock_hash(path))
            except Drift:
                if check_only:
                    raise
        if lock is None:
            res = lock_mod.compile_lock(lspec, path, upgrade=upgrade)
            row.update(status="locked", packages=len(res.packages), lock_hash=res.lock_hash,
                       message=f"{res.seconds:.1f}s")
    except Unreachable as exc:
        row.update(status="unreachable", message=exc.message)
        failures.append(exc)
    except DlbaseError as exc:
        row.update(status="failed" if not isinstance(exc, Drift) else "stale", message=exc.message)
        failures.append(exc)
    rows.append(row)


def _finish(rows: list[dict], failures: list[DlbaseError], as_json: bool) -> None:
    if as_json:
        ui.emit_json({"ok": not failures, "variants": rows})
    else:
        ui.table(["variant", "status", "packages", "lock hash", "note"],
                 [[r["variant"], r["status"], r["packages"], r["lock_hash"], r["message"]] for r in rows],
                 status_column="status")
    if failures:
        # The most severe kind decides the exit code: a damaged/stale lock (3) before an
        # unreachable index (5) would hide nothing, but a named variant's index is reported too.
        failures.sort(key=lambda f: 0 if not isinstance(f, Unreachable) else 1)
        first = failures[0]
        first.details = [f.message for f in failures[1:]] + first.details
        raise first
