"""Child processes of verify (the host half's pytest): a clean environment, and Ctrl-C
passed on so the child removes what it started before it is killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from dlbase.core.signing_env import SECRET_ENV


def child_env() -> dict[str, str]:
    """This environment without the pytest variables of a pytest that may be running us,
    and without the signing secrets (already read and removed by then; dropped here too,
    so no code path hands a passphrase or a key to the test suite)."""
    env = dict(os.environ)
    for name in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", *SECRET_ENV):
        env.pop(name, None)
    return env


def run_interruptible(cmd: list[str], *, env: dict[str, str], timeout: float, cwd: Path) -> tuple[int | None, str]:
    """Run a child to completion; on Ctrl-C pass SIGINT on (it cleans up what it started),
    give it a moment, then kill it, and re-raise."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out
    except BaseException:
        with contextlib.suppress(Exception):
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
