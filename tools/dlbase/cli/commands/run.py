"""`dlbase run [OPTIONS] IMAGE_OR_VARIANT [-- COMMAND]`: the researcher's launcher (parsing and
printing only; the Docker side is dlbase.engine.launcher).

As with ``docker run``, everything after IMAGE is the container's command, so dlbase's own
options go before IMAGE. One of them written after IMAGE (`dlbase run IMG --gpus none -- true`)
is refused rather than run as the command: that is never what was meant, and the image's
entrypoint still gets such a word after ``--`` (`dlbase run IMG -- --help`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dlbase.cli.paths import PathParam
from dlbase.cli import ui
from dlbase.core import imageref
from dlbase.core.errors import InvalidInput
from dlbase.define.spec import JUPYTER_LABEL
from dlbase.engine import Engine, launcher
from dlbase.image import local_image
from dlbase.core.inimage import WORKSPACE


def _container_command(ctx: click.Context, words: tuple[str, ...]) -> list[str] | None:
    """The words after IMAGE as the container's command (None: the image's CMD). A first word
    that is one of this verb's own options is a misplaced option, not a command."""
    if words[:1] == ("--",):
        return list(words[1:]) or None
    if words:
        first = words[0]
        own = {opt for p in ctx.command.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("-")}
        name = first.split("=", 1)[0] if first.startswith("--") else first[:2]  # -eX=1 is -e X=1
        if name in own:
            rest = " ".join(words)
            raise InvalidInput(
                f"{name} comes after IMAGE, where everything is the container's command",
                hint=f"put dlbase's options before IMAGE (`dlbase run {name} ... IMAGE -- COMMAND`); "
                     f"to hand it to the image's own command, write `dlbase run IMAGE -- {rest}`")
    return list(words) or None


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
@click.option("-p", "--port", "publish", default=None, metavar="[ADDRESS:]PORT",
              help=f"host port for the notebook server (default {launcher.NOTEBOOK_PORT} for a Jupyter image); "
                   f"it listens on {launcher.LOCAL_ADDRESS} unless ADDRESS says otherwise (0.0.0.0: every interface)")
@click.option("--workspace", type=PathParam(path_type=Path, file_okay=False), default=None,
              help=f"folder mounted at {WORKSPACE} (default: the current folder)")
@click.option("--no-workspace", is_flag=True, help=f"mount nothing at {WORKSPACE}")
@click.option("--user", default=None, metavar="UID[:GID]|NAME[:GROUP]",
              help="who runs inside (default: your UID:GID, so files written belong to you)")
@click.option("--json", "as_json", is_flag=True, help="print the launch settings and exit code as one JSON document")
@click.pass_context
def command(ctx: click.Context, image: str | None, command: tuple[str, ...], gpus: str, shm_size: str | None,
            ipc: str | None, env: tuple[str, ...], publish: str | None, workspace: Path | None, no_workspace: bool,
            user: str | None, as_json: bool) -> None:
    """Run an image as a researcher needs it: your folder at /workspace, your UID, GPUs,
    a /dev/shm big enough for DataLoaders, the notebook's URL printed; exits with the
    command's exit code. Ctrl-C stops and removes the container. dlbase's options go
    before IMAGE_OR_VARIANT; what follows it (after `--`) is the container's command."""
    from dlbase.core import validate

    if image is not None:
        validate.image_ref(image, where="IMAGE_OR_VARIANT")
    if shm_size is not None:
        validate.size(shm_size, where="--shm-size")
    if workspace is not None and no_workspace:
        raise InvalidInput(f"--workspace {workspace} and --no-workspace conflict",
                           hint=f"give one: --workspace DIR mounts DIR at {WORKSPACE}, --no-workspace mounts nothing")
    if user is not None:
        launcher.check_user(user)
    if publish is not None:
        launcher.parse_publish(publish)
    cmd = _container_command(ctx, command)
    environment = launcher.parse_env(env)
    engine = Engine()
    engine.ping()
    found = local_image.locate_ref(engine, image)
    ref, inspect = found.ref, found.inspect
    notebook = cmd is None and imageref.labels_of(inspect).get(JUPYTER_LABEL) == "true"
    tty = launcher.stdin_is_tty() and not as_json
    user = user or launcher.invoking_user()
    if notebook:
        cmd = launcher.notebook_command((inspect.get("Config") or {}).get("Cmd"), user)
    plan = launcher.plan(
        engine, ref, cmd, labels={}, workspace=None if no_workspace else str((workspace or Path.cwd()).resolve()),
        user=user, shm_size=shm_size, ipc=ipc, gpus=gpus,
        environment=environment, publish=publish, notebook=notebook, tty=tty)
    where = plan.workspace or "(nothing)"
    shm = "host IPC" if plan.ipc_mode == "host" else plan.shm_size
    if found.why:
        ui.info(f"{image or found.variant}: {found.why}")
    ui.info(f"running {ref} ({found.short_id}) as {plan.user}: {where} at {launcher.WORKSPACE}, /dev/shm {shm}, GPUs {plan.gpus}")
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
    # The exit status is the container's command's, not one of dlbase's failure kinds: say so,
    # so a 3 or a 14 is not read as "stale generated files" or "no such image".
    said = None if code == 0 else f"the container's command exited with status {code}"
    if as_json:
        ui.emit_json({"ok": code == 0, "exit_code": code, "message": said, "hint": None,
                      "container_exit_code": code, **plan.summary(),
                      "image_id": found.image_id})
    elif said:
        ui.info(f"dlbase run: {said}")
    if code != 0:
        raise click.exceptions.Exit(code)
