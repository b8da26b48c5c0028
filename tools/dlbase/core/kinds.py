"""What a value read from a document is, in the document's words, for error messages.

Why a module of its own: a reader that finds the wrong kind of value says what it found.
Python's type name is not that ("not NoneType", "not LineList", "a JSON dict"): the user
wrote YAML or received JSON, where the words are "empty", "a list", "an object". Every
reader of YAML or JSON (matrix, compat, policy files, statements, registry answers) takes
its words from here, so the same value is called the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Dialect = Literal["yaml", "json"]

_WORDS: dict[str, tuple[str, str]] = {  # kind -> (YAML's word, JSON's word)
    "null": ("empty (no value)", "null"),
    "bool": ("true/false", "true/false"),
    "int": ("a whole number", "a number"),
    "float": ("a number", "a number"),
    "str": ("text", "a string"),
    "list": ("a list", "an array"),
    "mapping": ("a mapping", "an object"),
    "bytes": ("binary data", "binary data"),
}


def kind_of(value: Any, dialect: Dialect = "yaml") -> str:
    """'a list', 'a mapping', 'text', 'empty (no value)'... (``dialect="json"``: 'an array',
    'an object', 'a string', 'null'); never a Python class name."""
    if value is None:
        kind = "null"
    elif isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int"
    elif isinstance(value, float):
        kind = "float"
    elif isinstance(value, str):
        kind = "str"
    elif isinstance(value, Mapping):
        kind = "mapping"
    elif isinstance(value, (list, tuple)):
        kind = "list"
    elif isinstance(value, (bytes, bytearray)):
        kind = "bytes"
    else:
        return "a value of another kind"
    return _WORDS[kind][dialect == "json"]
