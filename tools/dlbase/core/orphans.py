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

import ctypes
import ctypes.util
import signal
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
