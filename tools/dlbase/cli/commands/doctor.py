"""`dlbase doctor`: pre-flight of a GPU host (Docker, NVIDIA runtime, driver, GPU, /dev/shm)."""

from __future__ import annotations

from pathlib import Path

import click

from dlbase.verify import doctor as doctor_mod
from dlbase.cli import ui
from dlbase.cli.commands.common import json_option, open_project, project_options
from dlbase.engine import Engine
from dlbase.core.errors import DlbaseError
from dlbase.cli.helptext import with_exit_codes


@click.command("doctor")
@click.argument("variants", nargs=-1)
@click.option("--require-gpu", is_flag=True, help="a missing GPU, driver or NVIDIA runtime is a failure")
@project_options
@json_option
@with_exit_codes
def command(variants: tuple[str, ...], require_gpu: bool, matrix_file: Path | None, compat_file: Path | None,
            as_json: bool) -> None:
    """Can this host run the images? Checks the Docker daemon, the NVIDIA runtime, the driver
    against each CUDA line's minimum, the GPU against torch's kernels, and /dev/shm.
    VARIANTS narrows the lines checked (default: every variant). Exit {FAILED} when a check fails."""
    project = open_project(matrix_file, compat_file)
    lines = doctor_mod.lines_of(project, list(variants) or None)
    facts = doctor_mod.gather(Engine())
    rows = doctor_mod.diagnose(facts, lines, require_gpu=require_gpu)
    failed = [r for r in rows if r.status == doctor_mod.FAIL]
    if as_json:
        ui.emit_json({"ok": not failed, "require_gpu": require_gpu, "driver": facts.driver,
                      "driver_source": facts.driver_source, "gpus": [g.__dict__ for g in facts.gpus],
                      "nvidia_runtime": facts.nvidia_runtime, "shm_bytes": facts.shm_bytes,
                      "checks": [r.to_dict() for r in rows]})
    else:
        ui.table(["check", "status", "detail", "fix"], [[r.check, r.status, r.detail, r.fix] for r in rows],
                 title="dlbase doctor", status_column="status")
        if not failed and any(r.status == doctor_mod.NO_GPU for r in rows):
            ui.info("no GPU on this host: images run on the CPU here; on a GPU host run "
                    "`dlbase doctor --require-gpu`")
    if failed:
        raise DlbaseError(f"{len(failed)} check(s) failed: {', '.join(r.check for r in failed)}",
                          hint="apply the fix in each failing row, then run `dlbase doctor` again")
