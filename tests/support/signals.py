"""SIGTERM handling for test sessions.

CI stops a run at its time limit with SIGTERM. Python's default for SIGTERM is to die at
once, so pytest's session finalisers (which remove every image and container labelled with
the session's label) never ran and a killed run left its images behind (66 once). Turning
the first SIGTERM into KeyboardInterrupt makes pytest stop the way it does on Ctrl-C:
it tears down its fixtures, finalisers included. Later SIGTERMs are ignored so they cannot
interrupt that clean-up halfway.
"""

from __future__ import annotations

import signal

_seen: list[int] = []


def _handler(signum: int, _frame: object) -> None:
    if _seen:
        return  # already stopping: let the finalisers finish
    _seen.append(signum)
    raise KeyboardInterrupt(f"signal {signum} (SIGTERM): stopping and running the session's finalisers")


def install_sigterm_as_interrupt() -> None:
    """Install the handler (main thread only; elsewhere a no-op)."""
    try:
        signal.signal(signal.SIGTERM, _handler)
    except ValueError:
        pass
