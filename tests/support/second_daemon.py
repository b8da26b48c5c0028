"""A private, throw-away Docker daemon for tests that must kill the daemon mid-build.

The shared daemon serves other people's builds and must never be stopped, so a test
that needs "the daemon went away" starts its own ``dockerd`` with everything under one
temporary folder: its socket, data root, exec root (where it starts its own supervised
containerd), pid file and log, and its own containerd namespaces.

It runs in a network namespace of its own (``unshare --net``), and that is not
optional: ``dockerd --bridge none`` *deletes the host's docker0 interface* at start-up
(libnetwork's removeDefaultBridgeInterface), which breaks every container the shared
daemon starts on its default bridge. In its own namespace there is no docker0 to
delete, and no host iptables to touch. Its containers (network_mode=host included)
get only that empty namespace: enough for steps that need no network. Clients reach
it through its unix socket, which is a file, not a network address.

:func:`second_daemon` is a context manager that always takes it all down again: it
kills the dockerd it started, then every process whose command line names the private
folder (the supervised containerd, the shims) and their descendants (a step's
container), unmounts whatever is still mounted under the folder and deletes it. Only
processes this helper started are touched, found by that unique folder path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

START_TIMEOUT_S = 60


class NoSecondDaemon(RuntimeError):
    """This machine cannot run a private dockerd (not root, no dockerd, start failed)."""


@dataclass
class SecondDaemon:
    root: Path
    endpoint: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self, sig: int = signal.SIGKILL, wait: float = 30) -> None:
        """Stop the dockerd (SIGKILL: at once; SIGTERM: its own orderly shutdown)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait)

    def answers(self) -> bool:
        try:
            client = docker.APIClient(base_url=self.endpoint, timeout=5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - anything means "no"
            return False

    def running_commands(self) -> list[str]:
        """Commands of the containers running on this daemon (a build's step included)."""
        client = docker.APIClient(base_url=self.endpoint, timeout=10)
        try:
            return [str(c.get("Command", "")) for c in client.containers()]
        finally:
            client.close()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def load_image(self, ref: str, source_host: str | None = None) -> None:
        """Copy ``ref`` from the shared daemon (or ``source_host``) into this one."""
        src_env = dict(os.environ)
        if source_host:
            src_env["DOCKER_HOST"] = source_host
        else:
            src_env.pop("DOCKER_HOST", None)
        dst_env = {**os.environ, "DOCKER_HOST": self.endpoint}
        save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE, env=src_env)
        try:
            load = subprocess.run(["docker", "load", "-q"], stdin=save.stdout, env=dst_env,
                                  capture_output=True, text=True, timeout=180)
        finally:
            if save.stdout:
                save.stdout.close()
            save.wait(timeout=60)
        if save.returncode != 0 or load.returncode != 0:
            raise RuntimeError(f"copying {ref} into the private daemon failed: {load.stderr.strip()}")


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) for every process we can read."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        with contextlib.suppress(OSError, ValueError, IndexError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            table[pid] = (ppid, cmdline)
    return table


def _ours(root: Path, first: int | None) -> list[int]:
    """Processes naming ``root`` in their command line (plus ``first``) and all their
    descendants, children listed before parents."""
    table = _proc_table()
    seeds = {pid for pid, (_ppid, cmd) in table.items() if str(root) in cmd}
    if first is not None and first in table:
        seeds.add(first)
    found: list[int] = []
    frontier = list(seeds)
    seen = set(seeds)
    while frontier:
        pid = frontier.pop()
        found.append(pid)
        for child, (ppid, _cmd) in table.items():
            if ppid == pid and child not in seen:
                seen.add(child)
                frontier.append(child)
    me = os.getpid()
    return [pid for pid in reversed(found) if pid != me]


def _kill_all(root: Path, first: int | None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pids = _ours(root, first)
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        first = None  # reaped by Popen.wait below, or gone


def _unmount_under(root: Path) -> None:
    """Lazily unmount everything still mounted below ``root`` (overlay rootfs, netns, shm)."""
    prefix = str(root) + "/"
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                mounts.append(point)
    for point in sorted(set(mounts), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def available() -> str | None:
    """None when a private dockerd can be started here, else why not."""
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    for tool in ("dockerd", "docker", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@contextlib.contextmanager
def second_daemon(*, timeout: float = START_TIMEOUT_S, config: dict | None = None,
                  netns: str | None = None) -> Iterator[SecondDaemon]:
    """Start a private dockerd, yield it, and always remove every trace of it.

    ``config`` is its daemon.json (e.g. the containerd image store, for BuildKit's OCI
    exporter); ``netns`` a named namespace (tests/support/netns.py) to run in instead of
    a fresh one of its own, so that a registry and a CLI started there can reach it."""
    why = available()
    if why:
        raise NoSecondDaemon(why)
    # Short path: unix socket paths (containerd's included) must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="dlb2d-", dir="/tmp"))
    name = "dlb2d" + uuid.uuid4().hex[:12]  # containerd namespaces: [A-Za-z0-9] and [._-] between
    sock = root / "docker.sock"
    log = root / "dockerd.log"
    config_file = root / "daemon.json"
    config_file.write_text(json.dumps(config or {}))  # not /etc/docker/daemon.json (it may name hosts)
    # see the module doc: never in the host's network namespace
    enter = ["nsenter", f"--net={netns}", "--"] if netns else ["unshare", "--net", "--"]
    args = [
        *enter,
        "dockerd",
        "--host", f"unix://{sock}",
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"),
        "--config-file", str(config_file),
        "--bridge", "none",
        "--iptables=false",
        "--ip-masq=false",
        "--ip-forward=false",
        "--containerd-namespace", name,
        "--containerd-plugins-namespace", f"{name}-plugins",
        "--shutdown-timeout", "2",
    ]
    handle = open(log, "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    daemon = SecondDaemon(root=root, endpoint=f"unix://{sock}", process=process, log=log)
    try:
        deadline = time.monotonic() + timeout
        while not daemon.answers():
            if process.poll() is not None:
                raise NoSecondDaemon(f"private dockerd exited ({process.returncode}):\n{daemon.log_tail()}")
            if time.monotonic() > deadline:
                raise NoSecondDaemon(f"private dockerd did not answer within {timeout:.0f}s:\n{daemon.log_tail()}")
            time.sleep(0.3)
        yield daemon
    finally:
        with contextlib.suppress(Exception):
            daemon.kill(signal.SIGTERM, wait=10)
        _kill_all(root, process.pid)
        with contextlib.suppress(Exception):
            process.wait(timeout=5)
        handle.close()
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)
