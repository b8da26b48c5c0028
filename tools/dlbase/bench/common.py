"""What every benchmark shares: the label on what it creates, a free loopback port, the
wheelhouse filled before any clock starts, and the best-effort removal of its images.

Why one place: `bench build` and `bench update` each had their own label constant and
clean-up loop; a clean-up by label (or a reader of the images left after a crash) must
find one name, whichever bench made them.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from dlbase.build import builder as build_mod
from dlbase.build import wheelhouse
from dlbase.define.project import Project
from dlbase.define.spec import LOCK_PLATFORM, BuildSpec
from dlbase.engine import Engine

#: Label on every image and container a benchmark creates (value: which bench, or step).
BENCH_LABEL = "dlbase.bench"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for the wheelhouse server or a registry)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_wheelhouse(project: Project, spec: BuildSpec) -> Path:
    """The wheelhouse every build of ``spec`` serves, filled before the clock starts: a
    bench measures building, not downloading (on a fresh machine the first fill is
    gigabytes from PyPI)."""
    lock_path = project.variant_dir(spec.name) / "requirements.lock"
    house = wheelhouse.default_wheelhouse(spec.variant.python, LOCK_PLATFORM, root=project.root)
    build_mod.fill_wheelhouse(project, spec, lock_path, house)
    return house


def remove_images(engine: Engine, refs: list[str]) -> None:
    """Remove what a bench built or tagged, newest first; best effort: a leftover still
    carries :data:`BENCH_LABEL`, so it can be found and removed later."""
    for ref in reversed(refs):
        try:
            engine.remove_image(ref, force=True)
        except Exception:  # noqa: BLE001 - clean-up must not hide the bench's own result or error
            pass


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """End a helper server a bench started (a registry, a containerd): SIGTERM, then SIGKILL
    if it has not exited within ``timeout`` seconds, and reap it either way."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
