"""YAML reading (with line numbers) and round-trip writing (keeping comments).

The matrix and compat files are edited by people and by `dlbase pin`. Reading them is
the hot path of every verb, so it uses ruamel's safe loader (libyaml's C parser when
ruamel.yaml.clib is installed) into mappings and lists that remember their line numbers,
so every error can point at the exact place in the file. Only writing (`pin`) needs the
round-trip loader, which keeps comments and layout but is about 30x slower and, in the
ruamel versions we use, quadratic in a run of comment lines (10 MB took minutes).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

from dlbase.core import documents
from dlbase.core.errors import MatrixError
from dlbase.core.fsutil import write_text_atomic
from dlbase.core.fileerrors import read_text

try:  # libyaml through ruamel's own binding; without it the pure-Python parser does the same
    import _ruamel_yaml  # noqa: F401  (present or not is all that matters)

    _PURE = False
except ImportError:
    _PURE = True

#: The largest YAML file read, and its deepest nesting (the "yaml" row of the one table of
#: document limits). No real file comes near either; a file this big is a wrong path or a
#: generated accident, better refused at once than validated row by row for minutes, and
#: 30,000 nested ``[`` or ``- `` crash the interpreter in the composer (a segfault, not
#: an exception), so the depth is counted on the parser's events before anything is built.
MAX_BYTES = documents.LIMITS["yaml"].max_bytes
MAX_DEPTH = documents.LIMITS["yaml"].max_depth

# What YAML allows in a file (YAML 1.2, 5.1 "c-printable"); anything else is refused by the
# parser with no line number, so it is found here first.
_NOT_PRINTABLE = re.compile(r"[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


class LineMap(dict):
    """A YAML mapping as a dict, plus the 1-based line of the mapping and of each key."""

    line: int
    key_lines: dict


class LineList(list):
    """A YAML sequence as a list, plus the 1-based line where it starts."""

    line: int


class _LineConstructor(SafeConstructor):
    """The safe constructor, building :class:`LineMap`/:class:`LineList` with their lines."""

    def construct_yaml_map(self, node: Any) -> Any:
        data = LineMap()
        data.line, data.key_lines = node.start_mark.line + 1, {}
        yield data
        data.update(self.construct_mapping(node))
        for key_node, _ in node.value:  # construct_object caches: the keys already built
            key = self.construct_object(key_node, deep=True)
            try:
                data.key_lines.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # a list as a key (made a tuple in the mapping): no line for it
                pass

    def construct_yaml_seq(self, node: Any) -> Any:
        data = LineList()
        data.line = node.start_mark.line + 1
        yield data
        data.extend(self.construct_sequence(node))


_LineConstructor.add_constructor("tag:yaml.org,2002:map", _LineConstructor.construct_yaml_map)
_LineConstructor.add_constructor("tag:yaml.org,2002:seq", _LineConstructor.construct_yaml_seq)


def _reader() -> YAML:
    y = YAML(typ="safe", pure=_PURE)
    y.Constructor = _LineConstructor
    return y


def _yaml() -> YAML:
    """The round-trip loader/dumper, for files dlbase edits (comments and quotes kept)."""
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    return y


def _text(path: Path, name: str) -> str:
    """The file's text, refused (with its line) when too big or holding a control character."""
    if not path.exists():
        raise MatrixError(name, "file not found", hint="run dlbase from the repository root or pass --matrix/--compat")
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # read_text below names the problem
    if size > MAX_BYTES:
        raise MatrixError(name, f"the file is {size / 1e6:.1f} MB; dlbase reads at most {MAX_BYTES // (1 << 20)} MiB here "
                          f"(about 7000 variants; the project's own matrix is a few kB)",
                          hint="check that this is the file you meant (--matrix/--compat, DLBASE_ROOT); "
                               "`git diff --stat` shows what grew")
    text = read_text(path, name, what="YAML file")
    bad = _NOT_PRINTABLE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        char = bad.group()
        raise MatrixError(name, f"control character U+{ord(char):04X} ({'NUL' if char == chr(0) else repr(char)}) "
                          f"at column {column}; YAML allows only printable characters, tabs and line breaks",
                          lineno=line, hint="delete that character (`git diff` shows what changed)")
    return text


def load(path: Path, display: str | None = None, *, round_trip: bool = False) -> Any:
    """Parse a YAML file into :class:`LineMap`/:class:`LineList` (``round_trip``: ruamel's
    commented objects, for editing and :func:`dump_atomic`); a syntax error becomes a
    MatrixError naming the file and line."""
    name = display or str(path)
    text = _text(path, name)
    try:
        _check_depth(text, name)
        return (_yaml() if round_trip else _reader()).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        lineno = mark.line + 1 if mark is not None else None
        raise MatrixError(name, f"YAML syntax error: {exc.problem or exc.context}", lineno=lineno,
                          hint="fix the YAML syntax at that line") from None
    except YAMLError as exc:  # other parser failures
        raise MatrixError(name, f"YAML error: {str(exc).splitlines()[0] if str(exc) else 'not valid YAML'}",
                          hint="fix the file; `git diff` shows what changed") from None
    except (ValueError, TypeError, RecursionError) as exc:  # ruamel's constructors on odd input
        raise MatrixError(name, f"cannot be read as YAML: {exc}", hint="fix the file; `git diff` shows what changed") from None


def _check_depth(text: str, name: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, counted on the parser's event stream
    (an iterative state machine: no recursion, C speed with libyaml), stopping at the
    first event past it, so a hostile file costs milliseconds and names its line."""
    depth = 0
    for event in YAML(typ="safe", pure=_PURE).parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise MatrixError(name, f"nested more than {MAX_DEPTH} levels deep (the project's files nest about 5)",
                                  lineno=event.start_mark.line + 1,
                                  hint="fix the file; `git diff` shows what changed")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def lineno_of(node: Any, key: Any = None) -> int | None:
    """1-based line of a mapping key (or of the node itself), as :func:`load` recorded it."""
    if key is not None:
        try:
            return node.key_lines.get(key) if isinstance(node, LineMap) else None
        except TypeError:  # an unhashable key asked for
            return None
    return node.line if isinstance(node, (LineMap, LineList)) else None


def dump_atomic(data: Any, path: Path) -> None:
    """Write YAML through a temporary file and rename, so a crash leaves no partial file."""
    buf = io.StringIO()
    _yaml().dump(data, buf)
    write_text_atomic(path, buf.getvalue())
