"""Every ``dlbase.<package>.<module>`` a docstring or comment names exists: a reader who follows one to the
source finds it (the package was reorganised by concern: the old errors module is now
``dlbase.core.errors``, and a name left from before sends the reader nowhere).

A name is a module, a module's attribute (``dlbase.trust.predicates.rebuilt_predicate``)
or one of the image labels the code writes as a string (``dlbase.variant``): those are
not modules, and are found from the source's own string literals, not listed here.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "tools" / "dlbase"
NAME = re.compile(r"(?<![\w./-])dlbase((?:\.[A-Za-z_]\w*)+)(?![\w/-])")
LITERAL_LABEL = re.compile(r"^(dlbase(?:\.[\w-]+)+)(?:=.*)?$")


def sources() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *(REPO / "tests").rglob("*.py")])


def prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring of ``path``."""
    src = path.read_text(encoding="utf-8")
    found = [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(src).readline)
             if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.body[0].lineno, doc))
    return found


@lru_cache(maxsize=None)
def label_literals() -> frozenset[str]:
    """The ``dlbase.*`` strings the code uses as values (label names, label filters)."""
    found = set()
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = LITERAL_LABEL.match(node.value)
                if match:
                    found.add(match.group(1))
    return frozenset(found)


@lru_cache(maxsize=None)
def defined_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def exists(dotted: str) -> bool:
    """``dlbase.<a>.<b>.<c>`` is a module, or a module followed by a name it defines."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        base = PACKAGE.parent.joinpath(*parts[:i])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file():
            return i == len(parts) or parts[i] in defined_names(module)
    return False


def stale_names() -> list[str]:
    labels = label_literals()
    stale = []
    for path in sources():
        for line, text in prose(path):
            for match in NAME.finditer(text):
                dotted = "dlbase" + match.group(1)
                if dotted not in labels and not exists(dotted):
                    stale.append(f"{path.relative_to(REPO)}:{line}: {dotted}")
    return stale


def test_every_dlbase_name_in_a_docstring_or_comment_exists() -> None:
    stale = stale_names()
    assert not stale, "docstrings and comments name modules that do not exist:\n" + "\n".join(stale)


def test_the_check_tells_a_module_from_a_stale_name_and_a_label() -> None:
    assert exists("dlbase.core.errors") and exists("dlbase.core.errors.ExitCode")
    assert not exists("dlbase." + "errors") and not exists("dlbase.core.errors.NoSuchError")
    assert "dlbase.variant" in label_literals()  # the label, written as a string by define/spec.py
