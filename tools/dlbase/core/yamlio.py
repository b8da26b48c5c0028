"""YAML reading and writing that keeps comments and line numbers.

The matrix and compat files are edited by people and by `dlbase pin`; round-tripping
through ruamel keeps their comments and layout, and line numbers let every error point
at the exact place in the file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from dlbase.core.errors import MatrixError
from dlbase.core.fsutil import write_text_atomic
from dlbase.core.fileerrors import read_text


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    return y


def load(path: Path, display: str | None = None) -> Any:
    """Parse a YAML file; a syntax error becomes a MatrixError naming the file and line."""
    name = display or str(path)
    if not path.exists():
        raise MatrixError(name, "file not found", hint="run dlbase from the repository root or pass --matrix/--compat")
    text = read_text(path, name, what="YAML file")
    try:
        return _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        lineno = mark.line + 1 if mark is not None else None
        raise MatrixError(name, f"YAML syntax error: {exc.problem or exc.context}", lineno=lineno,
                          hint="fix the YAML syntax at that line") from None
    except YAMLError as exc:  # other parser failures (e.g. a reader error on a control character)
        raise MatrixError(name, f"YAML error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                          hint="fix the file; `git diff` shows what changed") from None
    except (ValueError, TypeError, RecursionError) as exc:  # ruamel's constructors on odd input
        raise MatrixError(name, f"cannot be read as YAML: {exc}", hint="fix the file; `git diff` shows what changed") from None


def lineno_of(node: Any, key: Any = None) -> int | None:
    """1-based line of a mapping key (or of the node itself), when ruamel recorded it."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if key is not None:
            return lc.key(key)[0] + 1
        return lc.line + 1
    except (KeyError, TypeError, IndexError):
        return None


def dump_atomic(data: Any, path: Path) -> None:
    """Write YAML through a temporary file and rename, so a crash leaves no partial file."""
    buf = io.StringIO()
    _yaml().dump(data, buf)
    write_text_atomic(path, buf.getvalue())
