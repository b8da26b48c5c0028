"""Reading a JSON document dlbase did not write itself: bounded, and typed where it is used.

Why one reader: an OSV record, a VEX document, a key file, a registry manifest or an
index answer is written by someone else, and a hostile or broken one used to end in an
internal error: ``RecursionError`` for 100,000 nested ``[``, ``AttributeError`` for
``"affected": "torch"`` or an index answering ``[]``, or 300 MB read into memory before
the parser failed. Every such read goes through :func:`parse_json` (or
:func:`read_json_file`), which

- refuses a document over its source's size cap before parsing it (the caps are data,
  in :data:`LIMITS`, one row per kind of source);
- refuses one nested deeper than its source allows, found by a scan of the brackets
  (the parser is never asked to recurse that far);
- turns a syntax error into one naming the file and line, or the URL;

and :func:`expect` checks a field's type where the caller reads it, so a wrong type is
an error that names the document and the field, never an ``AttributeError``.

A local file's problem is :class:`~dlbase.core.errors.InvalidInput` (exit 2) naming
FILE[:LINE]; a network answer's is :class:`~dlbase.core.errors.RegistryError` (exit 11)
naming the URL; a caller with its own meaning for "malformed" (a signature envelope is
"not signed correctly", exit 17) passes its own error class.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dlbase.core import fileerrors, kinds
from dlbase.core.errors import DlbaseError, FileProblem, InvalidInput, RegistryError


@dataclass(frozen=True)
class Limits:
    """What one kind of source may be: at most ``max_bytes`` and ``max_depth`` levels of nesting."""

    max_bytes: int
    max_depth: int
    why: str


_MIB = 1 << 20

#: One row per kind of document dlbase reads. The sizes are far above what a document of
#: the kind holds and far below what would cost real memory. The depths leave room above
#: the schemas: an OSV record and an OpenVEX document nest 7 levels (every record of
#: tests/unit/data/osv and images/vex measured), a cosign key envelope 3, an OCI index 4,
#: a PEP 691 page 3; a registry error's ``detail`` and an attestation's predicate are
#: free-form, so theirs are wider.
LIMITS: dict[str, Limits] = {
    "osv-record": Limits(16 * _MIB, 32, "an OSV advisory (the test database's are 1-4 kB)"),
    "osv-index": Limits(256 * _MIB, 8, "dlbase's own index beside an all.zip"),
    "vex": Limits(4 * _MIB, 32, "an OpenVEX document (the project's is 1.4 kB)"),
    "key": Limits(64 << 10, 8, "a cosign key file (about 1 kB)"),
    "manifest": Limits(4 * _MIB, 16, "an OCI manifest or index (registries refuse above 4 MiB)"),
    "registry-json": Limits(1 * _MIB, 16, "a tag list, a token answer or an error body"),
    "envelope": Limits(64 * _MIB, 64, "a signature payload, a DSSE envelope or its statement"),
    "sigstore-bundle": Limits(64 * _MIB, 64, "a Sigstore bundle (a DSSE envelope and its key hint; cosign 3's are ~1 kB)"),
    "index-answer": Limits(64 * _MIB, 16, "a PEP 691 project page"),
    "report": Limits(64 * _MIB, 64, "a report dlbase wrote under .dlbase/"),
    "image-probe": Limits(64 * _MIB, 16, "what a probe printed inside an image"),
    "project-json": Limits(1 * _MIB, 16, "a JSON file of the project"),
    # The matrix is ~7 kB for 8 variants (~130 bytes each): 1 MiB is ~7000 variants, each
    # an image of several GB.
    "yaml": Limits(1 * _MIB, 32, "a matrix, compat table or trust policy (1 MiB is about 7000 variants)"),
}

# A JSON string (its escapes included), and anything that is not a bracket: what the depth
# scan removes before it counts (so a "[" inside a string is not nesting).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_NOT_BRACKET_BYTES = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def problem_of(raw: bytes, limits: Limits) -> str | None:
    """Why ``raw`` is refused before parsing (too big, nested too deep), or None."""
    if len(raw) > limits.max_bytes:
        return f"more than {limits.max_bytes:,} bytes, too big for {limits.why}; it was not read further"
    depth = nesting_depth(raw, limits.max_depth)
    if depth > limits.max_depth:
        return f"nested more than {limits.max_depth} levels deep (no real document of this kind is)"
    return None


def nesting_depth(raw: bytes, limit: int) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text (strings skipped), without recursion;
    exact up to ``limit``, and some number above it when deeper.

    First every bracket byte is counted, those in strings too (``bytes.translate``: C
    speed, so the 60,000 records of an OSV archive cost no more than their parse); only
    when that count passes ``limit`` are the strings removed and the brackets counted
    again, so a record whose text holds ``[[[[`` is not refused for it. A string holding
    more ``]`` than ``[`` can make the first count too low; such a document then meets
    the parser's own recursion limit, which :func:`parse_json` reports the same way."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return raw.count(b"[") + raw.count(b"{")
    if _running_max(raw.translate(None, _NOT_BRACKET_BYTES)) <= limit:
        return limit
    return _running_max(_NOT_BRACKET.sub(b"", _STRING.sub(b"", raw)))


def _running_max(brackets: bytes) -> int:
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


ErrorType = Callable[..., DlbaseError]


@dataclass(frozen=True)
class Source:
    """Where a document comes from, for the messages: a file, a URL, or a part of either
    (``archive.zip:member``). ``error`` is the class its problems are raised as."""

    name: str
    error: ErrorType = InvalidInput
    hint: str | None = None

    @classmethod
    def file(cls, path: Path | str, hint: str | None = None) -> "Source":
        return cls(str(path), InvalidInput, hint)

    @classmethod
    def url(cls, url: str, hint: str | None = None) -> "Source":
        return cls(url, RegistryError, hint or "is this address what it should be (not a web page or a "
                                              "proxy's login page)? try again later, or ask its operator")

    def fail(self, message: str, *, line: int | None = None, hint: str | None = None) -> DlbaseError:
        where = self.name if line is None else f"{self.name}:{line}"
        return self.error(f"{where}: {message}", hint=hint or self.hint)


def parse_json(raw: bytes | str, kind: str, source: Source) -> Any:
    """The document in ``raw``, checked against ``LIMITS[kind]`` before it is parsed."""
    limits = LIMITS[kind]
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    why = problem_of(data, limits)
    if why:
        raise source.fail(why)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise source.fail(f"not UTF-8 text (byte {exc.start}); a JSON document is UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise source.fail(f"not valid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from None
    except RecursionError:  # deeper than the scan counted (brackets hidden in strings)
        raise source.fail(f"nested more than {limits.max_depth} levels deep (no real document of this kind is)") from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise source.fail("cannot be read as JSON: it holds a number of more than 4300 digits") from None


def read_json_file(path: Path, kind: str, *, display: str | None = None, hint: str | None = None,
                   error: ErrorType = InvalidInput) -> Any:
    """A JSON file, its size checked before a byte is read (a 300 MB file is not read)."""
    source = Source(display or str(path), error, hint)
    limits = LIMITS[kind]
    try:
        if path.exists() and not path.is_file():
            raise FileProblem(f"cannot read {source.name}: it is {'a folder' if path.is_dir() else 'not a regular file'}, "
                              "not a JSON file", hint="point at the file itself")
        with open(path, "rb") as handle:
            raw = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise fileerrors.file_error(source.name, exc) from None
    return parse_json(raw, kind, source)


#: One example value per type a caller may expect, so a wanted type is worded as a found value is.
_EXAMPLES = {dict: {}, list: [], str: "", int: 0, float: 0.0, bool: True, type(None): None}


def type_word(value_or_type: Any) -> str:
    """A JSON type as users know it ('an array'), not Python's name ('list'): the words
    are :func:`dlbase.core.kinds.kind_of`'s, so every reader says the same."""
    if isinstance(value_or_type, type):
        known = next((v for k, v in _EXAMPLES.items() if value_or_type is k), None)
        if known is None and value_or_type is not type(None):
            known = next((v for k, v in _EXAMPLES.items() if issubclass(value_or_type, k)), object())
        value_or_type = known
    return kinds.kind_of(value_or_type, "json")


def expect(doc: Any, key: str, kind: type | tuple[type, ...], source: Source, *, where: str = "",
           required: bool = True, default: Any = None) -> Any:
    """``doc[key]`` when it is of ``kind``; ``default`` when absent (or null) and not
    ``required``; else the source's error naming the field and what it holds instead.

    ``where`` names the part of the document (``affected[2]``) for the message. A bool is
    never accepted for an integer (JSON's true is not 1)."""
    prefix = f"{where}: " if where else ""
    if not isinstance(doc, dict):
        raise source.fail(f"{prefix}expected an object with '{key}', found {type_word(doc)}")
    value = doc.get(key)
    if value is None:
        if required:
            raise source.fail(f"{prefix}'{key}' is required")
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(type_word(k) for k in kinds)
        raise source.fail(f"{prefix}'{key}' must be {wanted}, not {type_word(value)}")
    return value


def expect_object(doc: Any, source: Source, what: str = "the document") -> dict[str, Any]:
    """``doc`` itself when it is a JSON object (an index answering ``[]`` is refused here)."""
    if not isinstance(doc, dict):
        raise source.fail(f"{what} must be a JSON object, not {type_word(doc)}")
    return doc
