"""Exit numbers in help texts, from :class:`dlbase.core.errors.ExitCode`: a help text names a
code by its name (``{POLICY}``), and the number shown is the enum's, never retyped."""

from __future__ import annotations

import re
from typing import Callable, TypeVar

from dlbase.core.errors import ExitCode

F = TypeVar("F", bound=Callable[..., object])
PLACEHOLDER = re.compile(r"\{(" + "|".join(code.name for code in ExitCode) + r")\}")


def exits(text: str) -> str:
    """``text`` with each ``{NAME}`` of an exit code replaced by its number (other braces kept)."""
    return PLACEHOLDER.sub(lambda m: str(int(ExitCode[m.group(1)])), text)


def with_exit_codes(fn: F) -> F:
    """A command whose docstring (its --help) names exit codes by name; put it right above
    the function, under the option decorators, so click reads the filled-in text."""
    fn.__doc__ = exits(fn.__doc__ or "")
    return fn
