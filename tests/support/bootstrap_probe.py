"""`dlbase base bootstrap` as a user runs it, with a stand-in for the Docker daemon: run by
tests/unit/test_bootstrap_children.py as ``python -m tests.support.bootstrap_probe MIRROR``.
The daemon is not what is tested (the stand-in says no image exists and never receives one: debootstrap cannot finish against the test's mirror), debootstrap, its wget
and dlbase's own SIGTERM handling are real."""

from __future__ import annotations

import sys


class NoImages:
    """Answers what `base bootstrap` asks before debootstrap runs."""

    def __init__(self, *_a: object, **_kw: object) -> None:
        pass

    def ping(self) -> None:
        return None

    def image_exists(self, _ref: str) -> bool:
        return False


if __name__ == "__main__":
    from dlbase.cli import app
    from dlbase.cli.commands import base as base_cmd

    base_cmd.Engine = NoImages  # type: ignore[assignment,misc]
    app.main(["base", "bootstrap", "--force", "--mirror", sys.argv[1]])
