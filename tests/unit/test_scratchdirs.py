"""Scratch folders name their owner; a sweep removes only those whose owner is gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dlbase.core import scratchdirs

PREFIX = "dlbase-buildkit-"


def _owned_by(folder: Path, pid: int, started: str) -> Path:
    folder.mkdir()
    (folder / scratchdirs.OWNER_FILE).write_text(f"{pid} {started}\n")
    (folder / "oci-layout").mkdir()
    return folder


def test_a_dead_owner_s_folder_goes_and_a_live_one_stays(tmp_path: Path) -> None:
    mine = scratchdirs.make(tmp_path, PREFIX)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = _owned_by(tmp_path / f"{PREFIX}dead", child.pid, "1")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = _owned_by(tmp_path / f"{PREFIX}alive", sleeper.pid, scratchdirs._start_time(sleeper.pid) or "")
        recycled = _owned_by(tmp_path / f"{PREFIX}recycled", sleeper.pid, "0")  # same pid, other start
        unowned = tmp_path / f"{PREFIX}unowned"
        unowned.mkdir()
        other = _owned_by(tmp_path / "someone-else", child.pid, "1")
        removed = scratchdirs.sweep(tmp_path, PREFIX)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(removed) == sorted([dead, recycled])
    assert not dead.exists() and not recycled.exists()
    assert mine.is_dir() and alive.is_dir() and unowned.is_dir() and other.is_dir()


def test_sweeping_a_folder_that_does_not_exist_removes_nothing(tmp_path: Path) -> None:
    assert scratchdirs.sweep(tmp_path / "absent", PREFIX) == []
