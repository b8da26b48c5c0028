"""The `dlbase` command: argument parsing, output and exit codes, and nothing else.

Each verb lives in dlbase.commands.<verb> and calls library functions that return values
or raise typed errors (dlbase.errors); this module turns those errors into one readable
message and the documented exit code.
"""

from __future__ import annotations

import importlib
import sys

import click

from dlbase import __version__, ui
from dlbase.errors import DlbaseError, ExitCode

# Verb modules, each exposing `command` (a click.Command). Order = order in --help.
COMMANDS = [
    "check", "render", "lint", "pin", "lock", "base", "build", "verify", "doctor",
    "push", "report", "diff", "rebuild_check", "bench",
    # this round: keys/trust/pull (issue 9), run (issue 13), layers (issue 10)
    "key", "trust", "pull", "run", "layers",
]


class Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # keep registration order, not alphabetical


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dlbase")
def app() -> None:
    """Build, verify and publish reproducible PyTorch + CUDA + Albumentations images.

    Exit codes: 0 ok, 1 check failed, 2 invalid input or incompatible versions, 3 stale
    generated files, 4 lint findings, 5 index/registry unreachable, 6 Docker daemon
    unreachable, 7 build failed, 8 image contents disagree with the variant, 9 verify
    failed, 10 image not verified, 11 registry error, 12 immutable tag conflict,
    13 not reproducible, 14 missing local resource, 15 wheel hash mismatch,
    16 unsigned, 17 bad signature, 18 statement about another digest, 19 trust policy
    not met, 130 interrupted.
    """


def _register() -> None:
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"dlbase.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dlbase.commands.{name}":
                continue  # verb not implemented in this checkout
            raise
        app.add_command(mod.command)


_register()


def main(argv: list[str] | None = None) -> None:
    try:
        # With standalone_mode=False click *returns* the code of a `click.exceptions.Exit`
        # (raised by a verb, or by --help/--version) instead of raising it; pass it on.
        rv = app.main(args=argv, prog_name="dlbase", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:
            sys.exit(rv)
    except DlbaseError as exc:
        if "--json" in (argv if argv is not None else sys.argv):
            ui.emit_json({"ok": False, **exc.to_dict()})
        ui.error(exc.message, hint=exc.hint, details=exc.details)
        sys.exit(int(exc.exit_code))
    except click.exceptions.Abort:
        ui.error("interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except KeyboardInterrupt:
        ui.error("interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.INVALID_INPUT))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
