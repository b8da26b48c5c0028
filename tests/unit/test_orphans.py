"""A child armed with stop_with_parent gets its signal when its parent is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from dlbase.core import orphans

from tests.support.signals import as_background_job

PARENT = """
import subprocess, sys
from dlbase.core import orphans
armed = sys.argv[1] == "armed"
child = subprocess.Popen(["sleep", "60"], start_new_session=True,
                         preexec_fn=orphans.stop_with_parent() if armed else None)
print(child.pid, flush=True)
subprocess.run(["sleep", "60"])
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (its new parent, init, not yet reaped it) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _orphan_survives(mode: str, sigint_ignored: bool = False) -> bool:
    """Whether the parent's child outlives its SIGKILLed parent; ``sigint_ignored`` starts the
    parent the way a background job of a script starts (SIGINT ignored, and inherited)."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                              preexec_fn=as_background_job if sigint_ignored else None)
    child = int(parent.stdout.readline())
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        return _alive(child)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(orphans.stop_with_parent() is None, reason="no prctl here (not Linux)")
@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background-job"])
def test_the_armed_child_stops_with_its_killed_parent_and_an_unarmed_one_does_not(sigint_ignored: bool) -> None:
    assert not _orphan_survives("armed", sigint_ignored)
    assert _orphan_survives("unarmed", sigint_ignored)  # what buildx did before: the check can fail
