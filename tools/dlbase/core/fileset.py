"""Write a set of files all or nothing.

Why: `dlbase render` rewrites up to ~20 committed files. Writing them one after another
left the tree half-rendered when one could not be written (an immutable Dockerfile, a
read-only folder, Ctrl-C): some Dockerfiles new, others old, the README table out of step.
Here every new content is first staged in a temporary file beside its target; only when
all are staged are they renamed into place, and if any rename fails (or the process is
interrupted) the files already replaced are put back as they were. Temporary files never
outlive the call.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dlbase.core.errors import FileProblem
from dlbase.core.validate import file_error


@dataclass(frozen=True)
class Change:
    """One file to write (``content``) or to delete (``content is None``)."""

    path: Path
    content: str | None


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _stage(path: Path, content: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _original(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise file_error(path, exc) from None


def _restore(path: Path, original: bytes | None) -> None:
    """Put one file back as it was (best effort: the caller reports the first failure)."""
    try:
        if original is None:
            path.unlink(missing_ok=True)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".restore", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(original)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError:
        pass


def commit(changes: list[Change]) -> None:
    """Apply every change or none. Raises :class:`FileProblem` naming the file that failed;
    the tree is then as it was before the call (and on KeyboardInterrupt too)."""
    staged: dict[Path, Path] = {}
    originals: dict[Path, bytes | None] = {}
    done: list[Path] = []
    created_dirs: list[Path] = []
    try:
        for ch in changes:
            originals[ch.path] = _original(ch.path)
        for ch in changes:
            if ch.content is None:
                continue
            try:
                missing = [d for d in (ch.path.parent, *ch.path.parent.parents) if not d.exists()]
                for d in reversed(missing):
                    d.mkdir()
                    created_dirs.append(d)
                staged[ch.path] = _stage(ch.path, ch.content)
            except OSError as exc:
                raise file_error(ch.path, exc, action="write") from None
        for ch in changes:
            try:
                if ch.content is None:
                    ch.path.unlink(missing_ok=True)
                else:
                    os.replace(staged[ch.path], ch.path)
                    del staged[ch.path]
            except OSError as exc:
                raise file_error(ch.path, exc, action="write" if ch.content is not None else "delete") from None
            done.append(ch.path)
    except BaseException as exc:
        for path in reversed(done):
            _restore(path, originals.get(path))
        if isinstance(exc, FileProblem) and done:
            exc.details = [*exc.details, f"{len(done)} file(s) already replaced were put back; nothing changed"]
        elif isinstance(exc, FileProblem):
            exc.details = [*exc.details, "nothing was written"]
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        staged.clear()
        for d in reversed(created_dirs):
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
