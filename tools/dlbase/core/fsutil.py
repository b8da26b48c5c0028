"""Writing files so that a crash never leaves a partial one behind.

Shared by every writer of committed or generated files (matrix, Dockerfiles, locks).
The temporary file gets ordinary permissions (0666 minus the umask) before the rename:
mkstemp's 0600 would otherwise make the file unreadable to the image's non-root user
once COPY puts it into an image.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temp file + rename; an unwritable place is a FileProblem (exit 2)."""
    try:
        _write_text_atomic(path, text)
    except OSError as exc:
        from dlbase.core.validate import file_error

        raise file_error(path, exc, action="write") from None


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, body: object, *, sort_keys: bool = True) -> Path:
    """Reports, records and SBOMs: indented JSON, written atomically; returns the path."""
    import json

    write_text_atomic(path, json.dumps(body, indent=2, sort_keys=sort_keys, default=str) + "\n")
    return path
