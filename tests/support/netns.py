"""A network namespace of a test's own, with loopback up, for a private daemon and the
registry it reads.

Why: a private dockerd must never share the host's namespace (see second_daemon.py), and
``unshare --net`` gives each one a namespace nobody else can enter. A named namespace
(``ip netns add``) can be entered by several processes one after the other: a registry
restarted there on its old storage, an empty daemon, and the dlbase CLI that drives it
(its wheelhouse server then listens on the loopback the build steps see). The namespace
has no route out: a build step that needs the network fails there, so a build that
passes in it took those steps from somewhere else (the registry cache).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator


def available() -> str | None:
    """None when a named namespace can be made and entered here, else why not."""
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2 / util-linux)"
    return None


def inside(netns: str, argv: list[str]) -> list[str]:
    """``argv`` run in the namespace whose file is ``netns`` (only the network is changed)."""
    return ["nsenter", f"--net={netns}", "--", *argv]


@contextlib.contextmanager
def private_netns() -> Iterator[str]:
    """Make a namespace, bring its loopback up, yield its file; always delete it."""
    name = f"dlbase-test-{uuid.uuid4().hex[:10]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"ip netns add {name} failed: {made.stderr.strip()}")
    path = f"/run/netns/{name}"
    try:
        subprocess.run(inside(path, ["ip", "link", "set", "lo", "up"]), check=True, capture_output=True)
        yield path
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
