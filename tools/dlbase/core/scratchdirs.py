"""Scratch folders that name their owner, so a later run can remove a dead one's.

Why: a build's scratch folder (BuildKit's OCI layout, gigabytes for a full image) is
removed by the build itself on success, failure, Ctrl-C and SIGTERM, but a SIGKILL, an
OOM kill or a power cut leaves it behind, and nothing else would ever delete it. Each
folder holds an ``owner`` file with the process ID and that process's start time (so a
recycled PID does not count as alive); the next run in the same parent removes the
folders whose owner is gone, and never one whose owner still runs (two builds of one
project side by side).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

OWNER_FILE = "owner"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def make(parent: str | os.PathLike[str] | None, prefix: str) -> Path:
    """A new folder under ``parent`` (the system's temp folder when None) that names this
    process as its owner."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (folder / OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid()) or ''}\n")
    return folder


def owner_alive(folder: Path) -> bool:
    """True unless the folder's owner file names a process that no longer runs (a folder
    without one, or with one not readable, is treated as alive: not ours to judge)."""
    try:
        pid_text, _, started = (folder / OWNER_FILE).read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return True
    now = _start_time(pid)
    return now is not None and (not started or now == started)


def sweep(parent: str | os.PathLike[str] | None, prefix: str) -> list[Path]:
    """Remove the folders under ``parent`` named ``prefix*`` whose owner is gone; what was
    removed."""
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    if not base.is_dir():
        return []
    removed = []
    for folder in sorted(base.glob(f"{prefix}*")):
        if folder.is_dir() and not owner_alive(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
