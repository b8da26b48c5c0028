"""Running `dlbase ARGS` in this process through the real entry point (dlbase.cli.app):
argument parsing, error printing and exit codes as a user meets them, without the start-up
cost of a subprocess, for the property-based tests that run it hundreds of times."""

from __future__ import annotations

import contextlib
import io
import os


def run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `dlbase ARGS` with ``env`` set for this call only."""
    from dlbase.cli import app as cli

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main(args)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else -1)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue(), err.getvalue()
