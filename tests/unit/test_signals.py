"""SIGTERM as an interruption: the one handler (dlbase.core.signals) and that nothing else sets one."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from dlbase.core import signals

PACKAGE = Path(signals.__file__).resolve().parents[1]


def _term_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def test_first_sigterm_interrupts_later_ones_do_not_cut_the_clean_up():
    before = signal.getsignal(signal.SIGTERM)
    cleaned = False
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with signals.sigterm_as_interrupt():
            try:
                _term_self()
            finally:
                _term_self()  # a second signal during clean-up: ignored
                cleaned = True
    assert cleaned and signals.received_sigterm()
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back


def test_nested_use_keeps_the_installed_handler():
    before = signal.getsignal(signal.SIGTERM)
    try:
        assert signals.install_sigterm_as_interrupt()
        installed = signal.getsignal(signal.SIGTERM)
        with signals.sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) is installed
        assert signal.getsignal(signal.SIGTERM) is installed  # not reset by the inner block
    finally:
        signal.signal(signal.SIGTERM, before)


def test_no_other_module_installs_a_sigterm_handler():
    """One home: the CLI, verify and the launcher all use dlbase.core.signals."""
    setters = re.compile(r"signal\.signal\(\s*signal\.SIGTERM")
    found = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if p.name != "signals.py" and setters.search(p.read_text())]
    assert found == []
