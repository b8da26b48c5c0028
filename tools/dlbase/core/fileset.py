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
import stat
from dataclasses import dataclass
from pathlib import Path

from dlbase.core.errors import FileProblem
from dlbase.core.fileerrors import file_error
from dlbase.core.fsutil import stage


@dataclass(frozen=True)
class Change:
    """One file to write (``content``) or to delete (``content is None``). ``mode``: the
    file's permission bits; None keeps those of the file replaced (ordinary ones for a new
    file), so rendering over an executable leaves it executable."""

    path: Path
    content: str | None
    mode: int | None = None


@dataclass(frozen=True)
class _Original:
    """A file as it was before the call: its bytes and mode, or absent (``data is None``)."""

    data: bytes | None
    mode: int | None = None


def _original(path: Path) -> _Original:
    try:
        with open(path, "rb") as fh:
            return _Original(fh.read(), stat.S_IMODE(os.fstat(fh.fileno()).st_mode))
    except FileNotFoundError:
        return _Original(None)
    except OSError as exc:
        raise file_error(path, exc) from None


def _restore(path: Path, original: _Original) -> None:
    """Put one file back as it was (best effort: the caller reports the first failure)."""
    try:
        if original.data is None:
            path.unlink(missing_ok=True)
            return
        os.replace(stage(path, original.data, mode=original.mode), path)
    except OSError:
        pass


def _no_duplicates(changes: list[Change]) -> None:
    """Two changes of one file would leave a staged temporary file without a target:
    refused before anything is written (a bug in the caller, not the user's input)."""
    seen: dict[Path, Path] = {}
    for ch in changes:
        key = Path(os.path.abspath(ch.path))
        if key in seen:
            raise ValueError(f"fileset.commit: {ch.path} is changed twice (also as {seen[key]})")
        seen[key] = ch.path


def commit(changes: list[Change]) -> None:
    """Apply every change or none. Raises :class:`FileProblem` naming the file that failed;
    the tree is then as it was before the call (and on KeyboardInterrupt too)."""
    _no_duplicates(changes)
    staged: dict[Path, Path] = {}
    originals: dict[Path, _Original] = {}
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
                staged[ch.path] = stage(ch.path, ch.content.encode("utf-8"), mode=ch.mode)
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
            _restore(path, originals.get(path, _Original(None)))
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
