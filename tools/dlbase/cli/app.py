"""The `dlbase` command: argument parsing, output and exit codes, and nothing else.

Each verb lives in dlbase.cli.commands.<verb> and calls library functions that return values
or raise typed errors (dlbase.core.errors); this module turns those errors into one readable
message and the documented exit code.

Three promises are kept here, for every verb at once:
- under --json stdout holds exactly one JSON document, success or failure: what the verb
  emitted, merged with ok, exit_code, message and hint;
- SIGTERM (a CI cancel, `timeout`) is handled like Ctrl-C, so clean-up code runs;
- no traceback reaches a user: an exception nothing foresaw is one line, exit 1, and
  DLBASE_DEBUG=1 shows the traceback (a safety net; each known failure has its own error).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from dlbase import __version__
from dlbase.cli import ui
from dlbase.core import fileerrors, signals
from dlbase.core import deadline as deadlines
from dlbase.core.errors import EXIT_TEXT, DlbaseError, ExitCode, exit_code_sentence

# Verb modules, each exposing `command` (a click.Command). Order = order in --help.
COMMANDS = [
    "check", "render", "lint", "pin", "lock", "base", "build", "bake", "verify", "doctor",
    "push", "report", "diff", "rebuild_check", "bench",
    # trust (keys, signatures, pulls), running an image, and its layers
    "key", "trust", "pull", "run", "layers",
    "scan",
    "compat",
]


class Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # keep registration order, not alphabetical


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dlbase")
def app() -> None:
    """Build, verify and publish reproducible PyTorch + CUDA + Albumentations images."""


# The exit-code list comes from dlbase.core.errors (EXIT_TEXT), like docs/reference.md's and docs/failures.md's.
app.help = (app.help or "") + "\n\nExit codes: " + exit_code_sentence() + "."


def _register() -> None:
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"dlbase.cli.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dlbase.cli.commands.{name}":
                continue  # verb not implemented in this checkout
            raise
        app.add_command(mod.command)


_register()


def _json_document(docs: list[object], code: int, error: dict | None) -> dict:
    """Exactly one document: what the verb emitted, plus ok, exit code, message and hint."""
    body: dict = {}
    for doc in docs:
        body.update(doc if isinstance(doc, dict) else {"result": doc})
    body["ok"] = code == 0
    body["exit_code"] = code
    if error:
        body.update({k: v for k, v in error.items() if k != "exit_code"})
    else:
        known = {int(c): text for c, text in EXIT_TEXT.items()}
        body.setdefault("message", None if code == 0 else known.get(code, f"exit {code}"))
        body.setdefault("hint", None)
    return body


#: The hint shown when an error carries none of its own: every error gets a "what to do" line.
FALLBACK_HINT: dict[ExitCode, str] = {
    ExitCode.FAILED: "the error says what failed; `dlbase VERB --help` explains the verb",
    ExitCode.INVALID_INPUT: "fix the value the error names; `dlbase VERB --help` lists what is accepted",
    ExitCode.DRIFT: "run `dlbase render` / `dlbase lock VARIANT` and commit the result",
    ExitCode.UNREACHABLE: "check the address and this machine's network, DNS and proxy",
    ExitCode.DAEMON: "start the Docker daemon (sudo tools/host/setup.sh) or fix DOCKER_HOST",
    ExitCode.MISSING: "check the name (`docker images`, `dlbase check` lists the variants); "
                      "`dlbase build VARIANT` makes a variant's image",
    ExitCode.REGISTRY: "check the registry's address, credentials and logs",
}


def _run(args: list[str]) -> tuple[int, dict | None]:
    """Run the verb; (exit code, error as a dict or None). Prints errors to stderr."""
    try:
        # With standalone_mode=False click *returns* the code of a `click.exceptions.Exit`
        # (raised by a verb, or by --help/--version) instead of raising it; pass it on.
        rv = app.main(args=args, prog_name="dlbase", standalone_mode=False)
        return (rv if isinstance(rv, int) and not isinstance(rv, bool) else 0), None
    except DlbaseError as exc:
        if not exc.hint:
            exc.hint = FALLBACK_HINT.get(exc.exit_code)
        ui.error(exc.message, hint=exc.hint, details=exc.details)
        return int(exc.exit_code), exc.to_dict()
    except (click.exceptions.Abort, KeyboardInterrupt):
        why = "interrupted" + (" (SIGTERM)" if signals.received_sigterm() else "")
        ui.error(why)
        return int(ExitCode.INTERRUPTED), {"error": "Interrupted", "message": why, "hint": None, "details": []}
    except click.ClickException as exc:
        exc.show()
        ui.err.print("[bold]what to do:[/bold] see `dlbase --help` or `dlbase VERB --help`")
        return int(ExitCode.INVALID_INPUT), {"error": type(exc).__name__, "message": exc.format_message(),
                                             "hint": "see `dlbase --help` or `dlbase VERB --help`", "details": []}
    except click.exceptions.Exit as exc:
        return exc.exit_code, None
    except SystemExit as exc:  # a verb that calls sys.exit: still one JSON document under --json
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else int(ExitCode.FAILED))
        return code, None
    except OSError as exc:
        # A file problem that no module turned into a FileProblem: still say which file.
        if getattr(exc, "filename", None):
            err = fileerrors.file_error(exc.filename, exc, action="use")
            ui.error(err.message, hint=err.hint)
            return int(err.exit_code), err.to_dict()
        return _unexpected(exc)
    except Exception as exc:  # noqa: BLE001 - the last resort: never show a user a traceback
        return _unexpected(exc)


def _unexpected(exc: BaseException) -> tuple[int, dict]:
    """The safety net, not the fix: every known failure has its own typed error."""
    if os.environ.get("DLBASE_DEBUG") == "1":
        traceback.print_exc()
    message = f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    hint = "this is a bug in dlbase; run again with DLBASE_DEBUG=1 to see where, and report it"
    ui.error(message, hint=hint)
    return int(ExitCode.FAILED), {"error": "InternalError", "message": message, "hint": hint, "details": []}


def wants_json(args: list[str]) -> bool:
    """Whether dlbase's own ``--json`` was given, read with click's own parser (no callbacks,
    no conversions), so a ``--json`` that belongs to something else does not count -- a
    container's command (`run IMG -- echo --json`), an option's value (`run -e --json IMG`)
    -- and one of dlbase's counts however the rest reads (`run --json IMG -- ls -h`). False
    when --help or --version is asked (their text is the output). Where the words do not
    parse (an unknown verb or option), any ``--json`` before ``--`` counts: that usage
    error is still one document."""
    cmd: click.Command = app
    name, rest, parent = "dlbase", list(args), None
    as_json = False
    while True:
        ctx = click.Context(cmd, info_name=name, parent=parent, **cmd.context_settings)
        try:
            opts, remaining, order = cmd.make_parser(ctx).parse_args(args=list(rest))
        except click.UsageError:
            own = rest[:rest.index("--")] if "--" in rest else rest
            return as_json or "--json" in own
        given = [p for p in order if isinstance(p, click.Option)]
        if any(not p.expose_value for p in given):
            return False  # --help / --version: an eager option that prints and ends
        as_json = as_json or any("--json" in p.opts and opts.get(p.name) is True for p in given)
        if not isinstance(cmd, click.Group) or not remaining:
            return as_json
        sub = cmd.get_command(ctx, remaining[0])
        if sub is None:
            own = remaining[:remaining.index("--")] if "--" in remaining else remaining
            return as_json or "--json" in own
        cmd, name, rest, parent = sub, remaining[0], remaining[1:], ctx


def _still_waiting(what: str, waited: float, limit: float) -> None:
    """The ticking line of a network operation that is taking long (on stderr, so --json
    output stays one document): a user sees it is waiting, on what, and for how long more."""
    ui.info(f"... still waiting for {what}: {waited:.0f}s so far, giving up at {limit:g}s")


def main(argv: list[str] | None = None) -> None:
    """Entry point: one exit code per failure kind, one JSON document under --json."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = wants_json(args)
    signals.install_sigterm_as_interrupt()
    if as_json:
        ui.capture_json()
    stop_ticking = deadlines.on_tick(_still_waiting)
    try:
        code, error = _run(args)
    finally:
        stop_ticking()
        docs = ui.take_json() if as_json else []
    if as_json:
        try:
            ui.write_json(_json_document(docs, code, error))
        except BrokenPipeError:
            pass
    sys.exit(code)
