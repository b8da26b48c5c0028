"""Children that stop when dlbase dies, even by SIGKILL.

Why: buildx and ``docker load`` run in a session of their own (so a Ctrl-C in the
terminal reaches dlbase alone, which then stops them in order), and a dlbase killed with
SIGKILL never gets to stop them: the build went on on the daemon, uploading into a
folder nobody would read. Linux can tell a child to receive a signal when its parent
dies (``prctl(PR_SET_PDEATHSIG)``); SIGINT is what buildx treats as "cancel the build".
Elsewhere (no prctl) nothing changes: the orderly paths still stop the children.

The armed child also starts with that signal at its default action. A dlbase started in
the background of a script begins with SIGINT ignored (the shell's rule for background
jobs), every program it starts inherits "ignore", and a child that ignores the signal it
was armed with outlives its parent all the same (measured: the armed `sleep` of
tests/unit/test_orphans.py survived a SIGKILLed parent in such a run).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "prctl") else None


def stop_with_parent(sig: int = signal.SIGINT) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that has the child receive ``sig``
    when dlbase dies; None where the platform has no prctl (pass it as it is)."""
    libc = _libc()
    if libc is None:
        return None

    libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.signal.restype = ctypes.c_void_p

    def _arm() -> None:
        libc.signal(int(sig), None)  # SIG_DFL: an inherited "ignore" would defeat the arming
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return _arm


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the process group a child leads (started with ``start_new_session``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_group(proc: subprocess.Popen, first: int = signal.SIGINT, wait_s: float = 15.0) -> None:
    """Stop a child and every process of its group (debootstrap's wget, buildx's helpers):
    ``first`` (what the child treats as "cancel"), then SIGKILL when the child has not gone
    within ``wait_s``. A child in a session of its own gets no signal from the terminal or
    from a SIGTERM sent to dlbase alone, so this is how it stops with dlbase."""
    if proc.poll() is not None:
        return
    for sig, wait in ((first, wait_s), (signal.SIGKILL, 5.0)):
        signal_group(proc, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # a second Ctrl-C: go on to SIGKILL
            continue
    signal_group(proc, signal.SIGKILL)  # the leader is gone; what it started may not be
