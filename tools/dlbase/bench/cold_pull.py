"""A cold pull-and-unpack, timed, in a private containerd that the bench starts and stops.

Why not `docker pull` on the daemon that holds the image: its containerd store shares
content by digest and snapshots by chain ID, so pulling the gzip form of a local image
downloads nothing ("Already exists"), and the zstd form downloads its blobs but unpacks
nothing (the snapshots of those diff_ids exist, in the image and in every intermediate
image of its build). Removing them would remove what others on the daemon use. A second
dockerd is no way out either (it removes the first one's bridge when it stops). A private
containerd (its own root, state and socket in a temporary folder, no CRI plugin, no
network of its own) is the engine Docker's containerd image store runs on: `ctr pull`
there fetches every blob and unpacks every layer into the overlayfs snapshotter, from
empty, each time. The integration tests prove separately that `docker pull` reads zstd.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dlbase.bench.common import stop_process
from dlbase.core.errors import DlbaseError, Missing

_CONFIG = """version = 2
root = "{root}/root"
state = "{root}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt"]
[grpc]
  address = "{root}/c.sock"
[ttrpc]
  address = "{root}/c.ttrpc.sock"
[debug]
  address = ""
[metrics]
  address = ""
"""
NAMESPACE = "dlbase-bench"


def tools() -> tuple[str, str]:
    """(containerd, ctr): checked before anything is pushed."""
    found = shutil.which("containerd"), shutil.which("ctr")
    if not all(found):
        raise Missing("containerd and ctr are needed for a cold pull (the bench's own containerd)",
                      hint="Debian: apt-get install containerd (Docker's engine already depends on it)")
    return found  # type: ignore[return-value]


class PrivateContainerd:
    def __init__(self, root: Path, ctr: str):
        self.root, self.ctr = root, ctr

    def pull_seconds(self, ref: str) -> float:
        """Seconds of `ctr pull` (fetch every blob, unpack every layer) of ``ref`` from a
        loopback registry; the image and its content are removed again afterwards."""
        base = [self.ctr, "--address", str(self.root / "c.sock"), "--namespace", NAMESPACE]
        started = time.monotonic()
        done = subprocess.run([*base, "images", "pull", "--plain-http", "--snapshotter", "overlayfs", ref],
                              capture_output=True, text=True, timeout=3600)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise DlbaseError(f"ctr pull {ref} failed (exit {done.returncode})",
                              details=(done.stderr or done.stdout).strip().splitlines()[-5:])
        subprocess.run([*base, "images", "rm", "--sync", ref], capture_output=True, timeout=600)
        return round(seconds, 2)


@contextmanager
def private_containerd(parent: Path | None = None) -> Iterator[PrivateContainerd]:
    """A containerd of the bench's own, from empty; stopped and its folder removed on exit."""
    containerd, ctr = tools()
    # A short folder: a unix socket path must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="dlb-ctd-", dir=parent or "/tmp"))
    config = root / "config.toml"
    config.write_text(_CONFIG.format(root=root))
    log = open(root / "containerd.log", "wb")
    proc = subprocess.Popen([containerd, "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([ctr, "--address", str(root / "c.sock"), "version"], capture_output=True,
                             timeout=10).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise Missing("the bench's containerd did not start",
                              details=(root / "containerd.log").read_text(errors="replace")[-1000:].splitlines())
            time.sleep(0.3)
        yield PrivateContainerd(root, ctr)
    finally:
        stop_process(proc, timeout=30)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
