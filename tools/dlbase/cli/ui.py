"""Output for people (tidy tables, progress) and for programs (JSON), in one place.

Tables and results go to stdout; progress, warnings and errors go to stderr, so
`dlbase check --json | jq` always gets clean JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# Piped output (CI logs, `| less`) gets a wide fixed width instead of rich's 80 columns,
# so tables stay one row per line.
out = Console(highlight=False, soft_wrap=False, emoji=False, width=None if sys.stdout.isatty() else 250)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

STATUS_STYLE = {"ok": "green", "pass": "green", "passed": "green", "incompatible": "red",
                "fail": "red", "failed": "red", "error": "red", "skipped": "yellow",
                "warning": "yellow", "ok (warnings)": "yellow"}


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
          status_column: str | None = None) -> None:
    t = Table(title=title, header_style="bold", show_lines=False)
    for col in columns:
        t.add_column(col, overflow="fold")
    idx = columns.index(status_column) if status_column in columns else None
    for row in rows:
        # Text, not markup: a test id like test_x[seed0-97x131-coco] or a cell "[/tmp]"
        # must print as it is (rich would eat the brackets, or raise on a closing tag).
        cells = [Text("" if c is None else str(c)) for c in row]
        if idx is not None:
            style = STATUS_STYLE.get(cells[idx].plain.split(":")[0].strip().lower())
            if style:
                cells[idx].stylize(style)
        t.add_row(*cells)
    out.print(t)


#: Under --json the CLI collects what a verb emits and prints exactly one document when the
#: verb ends (success or failure, with the exit code, message and hint merged in); None
#: means "print at once" (a library caller, or a verb run outside dlbase.cli.app).
_captured: list[Any] | None = None


def capture_json() -> None:
    global _captured
    _captured = []


def take_json() -> list[Any]:
    """The documents emitted since capture_json(), and stop capturing."""
    global _captured
    docs, _captured = _captured or [], None
    return docs


def emit_json(data: Any) -> None:
    if _captured is not None:
        _captured.append(data)
        return
    write_json(data)


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


# Messages carry user input (paths like [/tmp], tags like :abc:): printed as text, never
# as rich markup or emoji codes; only the fixed prefixes are styled.
def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}")


def info(message: str) -> None:
    err.print(message, markup=False)


def error(message: str, *, hint: str | None = None, details: Sequence[str] = ()) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(message)}", markup=True)
    for line in details:
        err.print(line, markup=False, highlight=False)
    if hint:
        err.print(f"[bold]what to do:[/bold] {escape(hint)}")
