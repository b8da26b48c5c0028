"""SIGTERM handling for test sessions: the product's own handler (dlbase.core.signals).

CI stops a run at its time limit with SIGTERM. Python's default for SIGTERM is to die at
once, so pytest's session finalisers (which remove every image and container labelled with
the session's label) never ran and a killed run left its images behind (66 once). The first
SIGTERM raised as KeyboardInterrupt makes pytest stop the way it does on Ctrl-C: it tears
down its fixtures, finalisers included; later SIGTERMs are ignored so they cannot
interrupt that clean-up halfway -- the same promise the command line makes, so one handler.

SIGINT the other way round: a run started in the background of a script (`make test &`,
`setsid ... &`) begins with SIGINT ignored, the shell's rule for background jobs, and an
ignored signal stays ignored in every program it starts. The Ctrl-C tests send SIGINT to
the dlbase they start, which then never saw it: six of them failed in such a run (a
push that finished, a container still sleeping) while they pass started in the
foreground. :func:`restore_sigint` gives the session Python's own handler back, so the
processes it starts begin with SIGINT at its default, as under a terminal;
:func:`as_background_job` starts a child that way, for the tests of that case.
"""

from __future__ import annotations

import signal

from dlbase.core.signals import install_sigterm_as_interrupt

__all__ = ["as_background_job", "install_sigterm_as_interrupt", "restore_sigint"]


def restore_sigint() -> bool:
    """Python's Ctrl-C handler in place of an inherited "ignore"; True when it was ignored.

    A handler (unlike "ignore") is reset to the default when a child program starts, so
    the CLIs the tests start see SIGINT as a user's Ctrl-C."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return False
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return True


def as_background_job() -> None:
    """A ``preexec_fn``: the child starts as a background job of a script does, SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
