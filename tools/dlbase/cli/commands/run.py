"""`dlbase run IMAGE_OR_VARIANT [-- COMMAND]`: the researcher's launcher (parsing and printing only;
the Docker side is dlbase.launcher)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dlbase.core import imageref
from dlbase.examine import local_image
from dlbase.cli import ui
from dlbase.engine import launcher
from dlbase.engine import Engine


def _is_notebook(engine: Engine, ref: str) -> bool:
    inspect = engine.inspect_image(ref)
    config = inspect.get("Config") or {}
    return imageref.labels_of(inspect).get("dlbase.flavor") == "notebook" or "8888/tcp" in (config.get("ExposedPorts") or {})


@click.command("run", context_settings={"allow_interspersed_args": False})
@click.argument("image", required=False, metavar="IMAGE_OR_VARIANT")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND...]")
@click.option("--gpus", default="auto", show_default=True, help="all, none, a count, or auto (all when the daemon "
              "has the NVIDIA runtime)")
@click.option("--shm-size", default=None, help=f"size of /dev/shm (default {launcher.DEFAULT_SHM}: enough for "
              "DataLoader workers)")
@click.option("--ipc", type=click.Choice(["host"]), default=None, help="share the host's IPC namespace and /dev/shm")
@click.option("-e", "--env", "env", multiple=True, metavar="NAME[=VALUE]",
              help="set a variable, or pass the host's value through (repeatable)")
@click.option("-p", "--port", type=int, default=None,
              help=f"host port for the notebook server (default {launcher.NOTEBOOK_PORT} for the notebook flavor)")
@click.option("--workspace", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="folder mounted at /workspace (default: the current folder)")
@click.option("--no-workspace", is_flag=True, help="mount nothing at /workspace")
@click.option("--user", default=None, help="UID:GID inside (default: yours, so files written belong to you)")
@click.option("--json", "as_json", is_flag=True, help="print the launch settings and exit code as one JSON document")
def command(image: str | None, command: tuple[str, ...], gpus: str, shm_size: str | None, ipc: str | None,
            env: tuple[str, ...], port: int | None, workspace: Path | None, no_workspace: bool, user: str | None,
            as_json: bool) -> None:
    """Run an image as a researcher needs it: your folder at /workspace, your UID, GPUs,
    a /dev/shm big enough for DataLoaders, the notebook's URL printed; exits with the
    command's exit code. Ctrl-C stops and removes the container."""
    from dlbase.core import validate

    if image is not None:
        validate.image_ref(image, where="IMAGE_OR_VARIANT")
    if shm_size is not None:
        validate.size(shm_size, where="--shm-size")
    engine = Engine()
    engine.ping()
    ref = local_image.locate_ref(engine, image)
    cmd = list(command[1:] if command[:1] == ("--",) else command) or None
    notebook = cmd is None and _is_notebook(engine, ref)
    tty = launcher.stdin_is_tty() and not as_json
    user = user or launcher.invoking_user()
    if notebook:
        cmd = launcher.notebook_command((engine.inspect_image(ref).get("Config") or {}).get("Cmd"), user)
    plan = launcher.plan(
        engine, ref, cmd, labels={}, workspace=None if no_workspace else str((workspace or Path.cwd()).resolve()),
        user=user, shm_size=shm_size, ipc=ipc, gpus=gpus,
        environment=launcher.parse_env(env), publish=port, notebook=notebook, tty=tty)
    where = plan.workspace or "(nothing)"
    shm = "host IPC" if plan.ipc_mode == "host" else plan.shm_size
    ui.info(f"running {ref} as {plan.user}: {where} at {launcher.WORKSPACE}, /dev/shm {shm}, GPUs {plan.gpus}")
    if plan.notebook_url:
        ui.info(f"notebook: {plan.notebook_url}")


    def on_output(stream: int, data: bytes) -> None:
        if as_json:  # stdout carries exactly one JSON document: the command's output goes to stderr
            sys.stderr.buffer.write(data)
            sys.stderr.buffer.flush()
            return
        target = sys.stdout.buffer if stream == 1 else sys.stderr.buffer
        target.write(data)
        target.flush()

    code = launcher.run(engine, plan, on_output=on_output, stdin_fd=sys.stdin.fileno() if tty else None)
    if as_json:
        ui.emit_json({"ok": code == 0, "exit_code": code, **plan.summary()})
    if code != 0:
        raise click.exceptions.Exit(code)

