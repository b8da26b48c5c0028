"""SIGTERM as an interruption: the one handler (dlbase.core.signals) and that nothing else sets one."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from dlbase.core import signals
from tests.support.signals import as_background_job

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


CHILD_SEES = ("import signal, subprocess, sys\n"
              "from tests.support.signals import restore_sigint\n"
              "{call}\n"
              "child = 'import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)'\n"
              "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True).stdout.strip())\n")


@pytest.mark.parametrize("call, seen", [("print(restore_sigint())", "True\nTrue"), ("", "False")],
                         ids=["restored", "left-ignored"])
def test_a_session_started_with_sigint_ignored_gives_its_children_ctrl_c(call: str, seen: str) -> None:
    """Started as a background job (SIGINT ignored), the session's children get Python's
    Ctrl-C handler only once restore_sigint ran; without it they inherit "ignore"."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", CHILD_SEES.format(call=call)], cwd=root, capture_output=True,
                          text=True, timeout=60, preexec_fn=as_background_job)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == seen
