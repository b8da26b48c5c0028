"""`dlbase run`'s Docker side: start an image the way a researcher needs it, without the traps.

The traps (measured on the default image): a mounted folder owned by the host user is not
writable by the image's uid 1000; Docker's default 64 MB /dev/shm kills DataLoader workers;
GPUs must be asked for; a notebook's token has to be fished out of the log. A ``Launch``
fixes each by default: the current folder at /workspace, the process as the invoking
user's UID:GID, /dev/shm of 8 GB (or the host's IPC namespace), every GPU when the daemon
has the NVIDIA runtime, and for the notebook flavor a published port with a token chosen
here so the URL can be printed before the server starts.

Part of the engine package (the only code that talks to the daemon); it uses
:class:`~dlbase.engine.Engine`'s public methods where they exist and docker-py's low-level
API for what they lack (bind mounts, a TTY, streaming output). Nothing here prints: output of the container goes
to the file descriptors / callbacks the caller passes, facts come back as values, and
failures are the typed errors of :mod:`dlbase.core.errors`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker
from docker import errors as docker_errors
from docker.types import Mount

from dlbase.core import errors, signals, sizes
from dlbase.core.inimage import NOTEBOOK_PORT, WORKSPACE
from dlbase.core.sizes import DEFAULT_SHM
from dlbase.engine.containers import LAUNCHED_LABEL, MANAGED_LABEL, gpu_requests

if TYPE_CHECKING:
    from dlbase.engine import Engine

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# A user or group as the container's passwd/group files may name it (POSIX portable name
# characters, not starting with '-'; a trailing '$' as Samba machine accounts have), or a number.
_ID_PART_RE = re.compile(r"^(?:[0-9]+|[A-Za-z0-9._][A-Za-z0-9._-]{0,31}\$?)\Z")
_MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change"
#: Where a published port listens unless an address is given: this machine only, as the URL says.
LOCAL_ADDRESS = "127.0.0.1"
_WILDCARDS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class Launch:
    """Everything one `dlbase run` decides before the container exists (printed by the CLI)."""

    image: str
    command: list[str] | None
    user: str | None
    workspace: str | None
    shm_size: str | None
    ipc_mode: str | None
    gpus: str  # "none", "all" or a count
    environment: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    address: str = LOCAL_ADDRESS  # the host address the port listens on
    token: str | None = None
    tty: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def notebook_url(self) -> str | None:
        if self.port is None or self.token is None:
            return None
        host = LOCAL_ADDRESS if self.address in _WILDCARDS else self.address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/lab?token={self.token}"

    def summary(self) -> dict[str, Any]:
        """What the CLI shows (and --json returns); the token is part of the URL only."""
        return {"image": self.image, "command": self.command, "user": self.user, "workspace": self.workspace,
                "shm_size": self.shm_size, "ipc": self.ipc_mode, "gpus": self.gpus,
                "env": sorted(self.environment), "port": self.port,
                "address": self.address if self.port is not None else None, "url": self.notebook_url,
                "tty": self.tty}


def parse_env(items: tuple[str, ...] | list[str], host_env: dict[str, str] | None = None) -> dict[str, str]:
    """``-e KEY=VALUE`` sets, ``-e KEY`` passes the host's value through (skipped when unset),
    like ``docker run -e``."""
    host_env = dict(os.environ if host_env is None else host_env)
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not _ENV_NAME_RE.match(key):
            raise errors.InvalidInput(f"-e {item!r}: {key!r} is not an environment variable name",
                                      hint="use -e NAME=VALUE, or -e NAME to pass the host's value through")
        if sep:
            out[key] = value
        elif key in host_env:
            out[key] = host_env[key]
    return out


def check_user(value: str) -> str:
    """``--user``: ``UID[:GID]`` or ``NAME[:GROUP]`` (names as the image's passwd/group know
    them), the way ``docker run --user`` reads it; anything else is refused here rather than
    by the daemon at start."""
    parts = value.split(":")
    why = None
    if len(parts) > 2:
        why = "has more than one ':'"
    elif not all(_ID_PART_RE.match(part) for part in parts):
        why = "is not a number or a user/group name"
    elif any(part.isdigit() and int(part) > _MAX_ID for part in parts):
        why = f"names an ID above {_MAX_ID}"
    if why:
        raise errors.InvalidInput(f"--user {value!r} {why}",
                                  hint="give UID[:GID] (e.g. --user 1000:1000) or a user the image has "
                                       "(e.g. --user root); the default is yours")
    return value


def parse_publish(value: str) -> tuple[str, int]:
    """``-p [ADDRESS:]PORT`` -> (address, port). Without an address the port listens on
    127.0.0.1 only: a notebook's token is a password, and the printed URL is local."""
    import ipaddress

    address, sep, port_text = value.rpartition(":")
    if not sep:
        address = LOCAL_ADDRESS
    address = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    hint = "e.g. -p 8888 (this machine only), -p 0.0.0.0:8888 (every interface) or -p 10.0.0.5:8888"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise errors.InvalidInput(f"-p {value!r}: {port_text!r} is not a port number (1-65535)", hint=hint)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise errors.InvalidInput(f"-p {value!r}: {address!r} is not an IP address", hint=hint) from None
    return address, int(port_text)


def parse_gpus(value: str) -> str:
    value = value.strip().lower()
    if value in ("all", "none", "auto") or (value.isdigit() and int(value) > 0):
        return value
    raise errors.InvalidInput(f"--gpus {value!r} is not all, none, auto or a positive count",
                              hint="--gpus all (every GPU), --gpus 2 (two), --gpus none (CPU only)")


def check_shm(value: str) -> str:
    """``--shm-size`` in the canonical form docker-py reads back as the same bytes (exit 2 when
    it is not a size, or zero: Docker would silently use its 64 MB)."""
    return sizes.canonical(sizes.shm_option(value))


def plan(engine: Engine, image: str, command: list[str] | None, *, labels: dict[str, str],
         workspace: str | None, user: str | None, shm_size: str | None, ipc: str | None, gpus: str,
         environment: dict[str, str], publish: str | None, notebook: bool, tty: bool) -> Launch:
    """Decide the container's settings; asks the daemon only whether it has the NVIDIA runtime."""
    gpus = parse_gpus(gpus)
    if gpus == "auto":
        gpus = "all" if engine.has_nvidia_runtime() else "none"
    elif gpus != "none" and not engine.has_nvidia_runtime():
        raise errors.Missing(f"--gpus {gpus}: the Docker daemon at {engine.endpoint} has no NVIDIA runtime",
                             hint="install nvidia-container-toolkit on the host, or run with --gpus none")
    if ipc is not None and ipc != "host":
        raise errors.InvalidInput(f"--ipc {ipc!r}: only `host` is supported", hint="--ipc host shares the host's /dev/shm")
    if ipc == "host":
        shm = None
    else:
        shm = check_shm(shm_size or DEFAULT_SHM)
    env = dict(environment)
    port = token = None
    address = LOCAL_ADDRESS
    if user is not None:
        check_user(user)
    if notebook or publish is not None:
        address, port = parse_publish(publish) if publish is not None else (LOCAL_ADDRESS, NOTEBOOK_PORT)
        if notebook:
            token = env.get("JUPYTER_TOKEN") or secrets.token_hex(24)
            env["JUPYTER_TOKEN"] = token
    if workspace is not None and not os.path.isdir(workspace):
        raise errors.InvalidInput(f"--workspace {workspace!r} is not a folder", hint="name an existing folder")
    return Launch(image=image, command=command, user=user, workspace=workspace, shm_size=shm, ipc_mode=ipc,
                  gpus=gpus, environment=env, port=port, address=address, token=token, tty=tty,
                  labels={**labels, MANAGED_LABEL: "true", LAUNCHED_LABEL: "true"})


def invoking_user(env: dict[str, str] | None = None) -> str:
    """The invoking user's UID:GID, so files written under /workspace belong to them; under
    sudo, the user who ran sudo (SUDO_UID/SUDO_GID), not root."""
    env = dict(os.environ if env is None else env)
    if os.getuid() == 0 and env.get("SUDO_UID", "").isdigit() and env.get("SUDO_GID", "").isdigit():
        return f"{env['SUDO_UID']}:{env['SUDO_GID']}"
    return f"{os.getuid()}:{os.getgid()}"


def notebook_command(image_cmd: list[str] | None, user: str) -> list[str] | None:
    """JupyterLab refuses to start as root without --allow-root; a root user (root running
    dlbase, or --user 0) gets the image's own command with it. Otherwise None (the image's CMD)."""
    if user.split(":", 1)[0] not in ("0", "root") or not image_cmd or "jupyter" not in image_cmd[0]:
        return None
    return [*image_cmd, "--allow-root"] if "--allow-root" not in image_cmd else None


def _api(engine: Engine) -> docker.APIClient:
    """A low-level client on the engine's endpoint, without a read timeout: a run may be
    silent for hours (training), which must not look like a dead daemon."""
    engine.ping()
    try:
        if "DOCKER_HOST" in os.environ and engine.endpoint == os.environ["DOCKER_HOST"]:
            return docker.from_env(version="auto", timeout=None).api  # honours DOCKER_TLS_* too
        return docker.APIClient(base_url=engine.endpoint, version="auto", timeout=None)
    except docker_errors.DockerException as exc:
        raise errors.DaemonUnavailable(f"Docker daemon at {engine.endpoint} is not reachable: {exc}") from None


@contextlib.contextmanager
def _translated(engine: Engine, image: str) -> Iterator[None]:
    try:
        yield
    except errors.DlbaseError:
        raise
    except docker_errors.ImageNotFound:
        raise errors.Missing(f"no image {image!r} on the Docker daemon at {engine.endpoint}",
                             hint="build it (`dlbase build VARIANT`) or pull it (`dlbase pull REF`)") from None
    except docker_errors.APIError as exc:
        message = str(getattr(exc, "explanation", None) or exc)
        if "port is already allocated" in message or "address already in use" in message:
            raise errors.InvalidInput(f"the host port is taken: {message}",
                                      hint="choose another one with -p PORT") from None
        if "unable to find user" in message or "unable to find group" in message:
            raise errors.InvalidInput(f"--user: the image has no such user or group: {message}",
                                      hint="give a numeric UID:GID (the default is yours), or a user the "
                                           "image's /etc/passwd has") from None
        if "cannot assign requested address" in message:
            raise errors.InvalidInput(f"-p: this host has no such address: {message}",
                                      hint="give one of this host's addresses, or 0.0.0.0 for every interface") from None
        if "nvidia" in message or "could not select device driver" in message:
            raise errors.Missing(f"GPU requested but the daemon cannot provide one: {message}",
                                 hint="install nvidia-container-toolkit, or run with --gpus none") from None
        raise errors.DlbaseError(f"Docker daemon refused the run: {message}") from None
    except (docker_errors.DockerException, OSError) as exc:
        raise errors.DaemonUnavailable(f"Docker daemon at {engine.endpoint} went away during the run: {exc}") from None


def _create(api: docker.APIClient, launch: Launch) -> str:
    count = {"all": -1, "none": None}.get(launch.gpus) if not launch.gpus.isdigit() else int(launch.gpus)
    device_requests = gpu_requests(count)
    # A Mount, not a "SRC:DST:MODE" bind string: a folder whose path holds ':' or ',' mounts too.
    mounts = [Mount(target=WORKSPACE, source=launch.workspace, type="bind")] if launch.workspace else None
    ports = {f"{NOTEBOOK_PORT}/tcp": (launch.address, launch.port)} if launch.port is not None else None
    host_config = api.create_host_config(mounts=mounts, shm_size=launch.shm_size, ipc_mode=launch.ipc_mode,
                                         port_bindings=ports, device_requests=device_requests, init=False)
    created = api.create_container(
        launch.image, command=launch.command, user=launch.user or "", environment=launch.environment,
        working_dir=WORKSPACE if launch.workspace else None, labels=launch.labels,
        ports=[NOTEBOOK_PORT] if ports else None, tty=launch.tty, stdin_open=launch.tty,
        host_config=host_config, detach=True)
    return created["Id"]


def run(engine: Engine, launch: Launch, *, on_output: Callable[[int, bytes], None],
        stdin_fd: int | None = None, on_started: Callable[[str], None] | None = None) -> int:
    """Run ``launch`` to the end and return the command's exit code.

    Output goes to ``on_output(stream, data)`` (1 = stdout, 2 = stderr; with a TTY it is all
    stream 1). With ``launch.tty`` the caller's terminal (``stdin_fd``) is put in raw mode
    and proxied both ways, the way ``docker run -it`` does. The container is always removed;
    Ctrl-C (or SIGTERM) stops it first and raises :class:`~dlbase.core.errors.Interrupted`.
    """
    api = _api(engine)
    container_id = None
    with signals.sigterm_as_interrupt():  # clean-up below runs on SIGTERM too, and is not cut by a second one
        try:
            with _translated(engine, launch.image):
                container_id = _create(api, launch)
                if launch.tty and stdin_fd is not None:
                    return _run_tty(api, container_id, stdin_fd, on_output, on_started)
                # Attach before start (as docker's CLI does): a command that ends at once loses no output.
                stream = api.attach(container_id, stream=True, logs=True, demux=True)
                api.start(container_id)
                if on_started:
                    on_started(container_id)
                for out, err in stream:
                    if out:
                        on_output(1, out)
                    if err:
                        on_output(2, err)
                return int(api.wait(container_id)["StatusCode"])
        except KeyboardInterrupt:
            if container_id is not None:
                with contextlib.suppress(Exception):
                    api.stop(container_id, timeout=5)
            raise errors.Interrupted(f"interrupted: the container of {launch.image} was stopped and removed") from None
        finally:
            if container_id is not None:
                with contextlib.suppress(Exception):
                    api.remove_container(container_id, force=True, v=True)


def _run_tty(api: docker.APIClient, container_id: str, stdin_fd: int,
             on_output: Callable[[int, bytes], None], on_started: Callable[[str], None] | None) -> int:
    """Proxy a raw terminal to the container's TTY (what docker's CLI does for -it)."""
    import termios
    import tty

    sock = api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw_sock: socket.socket = getattr(sock, "_sock", sock)
    raw_sock.settimeout(None)
    api.start(container_id)
    if on_started:
        on_started(container_id)
    _resize(api, container_id, stdin_fd)
    old = termios.tcgetattr(stdin_fd)
    previous_winch = signal.getsignal(signal.SIGWINCH)
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGWINCH, lambda *_: _resize(api, container_id, stdin_fd))
    try:
        tty.setraw(stdin_fd)
        while True:
            ready, _, _ = select.select([raw_sock, stdin_fd], [], [])
            if raw_sock in ready:
                data = raw_sock.recv(65536)
                if not data:
                    break
                on_output(1, data)
            if stdin_fd in ready:
                data = os.read(stdin_fd, 65536)
                if not data:
                    with contextlib.suppress(OSError):
                        raw_sock.shutdown(socket.SHUT_WR)
                else:
                    raw_sock.sendall(data)
    finally:
        termios.tcsetattr(stdin_fd, termios.TCSADRAIN, old)
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGWINCH, previous_winch)
        with contextlib.suppress(Exception):
            sock.close()
    return int(api.wait(container_id)["StatusCode"])


def _resize(api: docker.APIClient, container_id: str, fd: int) -> None:
    with contextlib.suppress(Exception):
        size = os.get_terminal_size(fd)
        api.resize(container_id, height=size.lines, width=size.columns)


def stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()


@dataclass(frozen=True)
class Captured:
    """A finished command of :func:`run_captured`: exit code, stdout bytes, stderr tail."""

    exit_code: int
    stdout: bytes
    stderr_tail: list[str]


def run_captured(engine: Engine, image: str, command: list[str], *, files: dict[str, bytes],
                 files_dir: str, labels: dict[str, str], shm_size: str | None = DEFAULT_SHM,
                 environment: dict[str, str] | None = None,
                 on_stderr_line: Callable[[str], None] | None = None) -> Captured:
    """Run ``command`` with ``files`` copied into ``files_dir`` first (through the archive API,
    so it works with a remote daemon and whatever the image holds); stdout is kept, stderr is
    passed on line by line (progress). The container is always removed."""
    import io
    import tarfile

    api = _api(engine)
    launch = Launch(image=image, command=command, user=None, workspace=None,
                    shm_size=check_shm(shm_size) if shm_size else None, ipc_mode=None,
                    gpus="none", environment=dict(environment or {}),
                    labels={**labels, MANAGED_LABEL: "true", LAUNCHED_LABEL: "true"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    container_id = None
    out = bytearray()
    pending = b""
    tail: list[str] = []
    try:
        with _translated(engine, image):
            container_id = _create(api, launch)
            api.put_archive(container_id, "/tmp", _dir_archive(files_dir))
            api.put_archive(container_id, files_dir, buf.getvalue())
            stream = api.attach(container_id, stream=True, logs=True, demux=True)
            api.start(container_id)
            for chunk_out, chunk_err in stream:
                if chunk_out:
                    out.extend(chunk_out)
                if chunk_err:
                    pending += chunk_err
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        text = line.decode(errors="replace")
                        tail = (tail + [text])[-20:]
                        if on_stderr_line:
                            on_stderr_line(text)
            code = int(api.wait(container_id)["StatusCode"])
        return Captured(exit_code=code, stdout=bytes(out), stderr_tail=tail)
    except KeyboardInterrupt:
        raise errors.Interrupted(f"interrupted while running {image}") from None
    finally:
        if container_id is not None:
            with contextlib.suppress(Exception):
                api.remove_container(container_id, force=True, v=True)


def _dir_archive(path: str) -> bytes:
    """A tar holding the empty folder ``path`` (relative to /tmp), world-writable like /tmp."""
    import io
    import tarfile

    if not path.startswith("/tmp/"):
        raise errors.InvalidInput(f"files_dir {path!r} must be under /tmp")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(path[len("/tmp/"):])
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777, 0
        tar.addfile(info)
    return buf.getvalue()
