"""SIGTERM handled like Ctrl-C, defined once for the command line, verify and `dlbase run`.

A CI cancel, `timeout` or `docker stop` of a wrapper sends SIGTERM. Python's default is to
die at once, so `finally:` blocks (remove the container, the temp files) never run. Turning
the first SIGTERM into :class:`KeyboardInterrupt` makes every clean-up path that already
handles Ctrl-C handle it too. Later SIGTERMs are ignored while that clean-up runs, so a
second signal cannot cut it halfway (a container left behind, a half-written file).

The handler is only installed from the main thread (Python allows nothing else); elsewhere
these are no-ops and the caller's process keeps its own handling.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

_received: list[int] = []  # SIGTERMs seen since the handler was installed


def _handler(signum: int, _frame: object) -> None:
    first = not _received
    _received.append(signum)
    if first:
        raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")
    # already stopping: let the clean-up finish


def received_sigterm() -> bool:
    """Whether a SIGTERM arrived since the handler was installed (the CLI says "(SIGTERM)")."""
    return bool(_received)


def install_sigterm_as_interrupt() -> bool:
    """Install the handler for the rest of the process; False when not on the main thread."""
    _received.clear()
    try:
        signal.signal(signal.SIGTERM, _handler)
    except ValueError:  # not the main thread (dlbase called from a worker): leave it alone
        return False
    return True


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt (once); the previous handler is
    restored afterwards. For library callers of long runs (verify, a container run) whose
    process may not have installed the handler itself."""
    previous: Any = signal.getsignal(signal.SIGTERM)
    if previous is _handler:  # already installed (the CLI did): nothing to add or restore
        yield
        return
    installed = install_sigterm_as_interrupt()
    try:
        yield
    finally:
        if installed:
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
