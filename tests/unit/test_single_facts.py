"""Facts stated once: a test per fact that greps the source for a copy typed elsewhere.

Each fact has one home; these fail when a literal copy appears outside it, which is how
two places drift apart (a help text promising exit 19 after the code became 21).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from click.testing import CliRunner

from dlbase.cli.app import app
from dlbase.core.errors import ExitCode

PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "dlbase"
EXIT_NUMBER = re.compile(r"\b[Ee]xits? (?:code )?\d+|\(exit \d+")


def _help_texts(path: Path) -> list[tuple[int, str]]:
    """The help texts of a CLI module: its click commands' docstrings and every ``help=`` string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and any("command" in ast.unparse(d) for d in node.decorator_list):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.lineno, doc))
        elif isinstance(node, ast.keyword) and node.arg == "help" and isinstance(node.value, ast.Constant):
            found.append((node.value.lineno, str(node.value.value)))
    return found


def test_help_texts_name_exit_codes_and_never_retype_their_numbers() -> None:
    """An exit number in a help text is ``{NAME}`` filled from core/errors.py (cli/helptext.py)."""
    retyped = [f"{path.relative_to(PACKAGE)}:{line}: {EXIT_NUMBER.search(text).group(0)}"
               for path in sorted((PACKAGE / "cli").rglob("*.py"))
               for line, text in _help_texts(path) if EXIT_NUMBER.search(text)]
    assert not retyped, "help texts retype exit numbers; write {NAME} and wrap with exits()/@with_exit_codes:\n" \
        + "\n".join(retyped)


def test_a_help_text_shows_the_number_core_errors_gives() -> None:
    out = CliRunner().invoke(app, ["trust", "--help"], terminal_width=200).output
    assert f"Exit {int(ExitCode.UNSIGNED)} unsigned" in out and f"{int(ExitCode.POLICY)} the policy is not met" in out
    assert "{" not in out
