"""SIGTERM handling for test sessions: the product's own handler (dlbase.core.signals).

CI stops a run at its time limit with SIGTERM. Python's default for SIGTERM is to die at
once, so pytest's session finalisers (which remove every image and container labelled with
the session's label) never ran and a killed run left its images behind (66 once). The first
SIGTERM raised as KeyboardInterrupt makes pytest stop the way it does on Ctrl-C: it tears
down its fixtures, finalisers included; later SIGTERMs are ignored so they cannot
interrupt that clean-up halfway -- the same promise the command line makes, so one handler.
"""

from __future__ import annotations

from dlbase.core.signals import install_sigterm_as_interrupt

__all__ = ["install_sigterm_as_interrupt"]
