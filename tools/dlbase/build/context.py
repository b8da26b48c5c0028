"""The build context a build is given: what the Dockerfile COPYs, staged with fixed times.

Why: COPY keeps the context's mtimes, and a checkout's are the time of the clone, so two
clones (or one clone touched by an editor) would give COPY layers of different bytes.
Staging copies only the Dockerfile's COPY sources (plus the Dockerfile and .dockerignore)
into a scratch folder that mirrors the project's layout, so the same Dockerfile builds from
either, and dates every file and folder FILE_EPOCH, with folders 0755 and files 0644 or 0755
(as git records them), whatever the umask of the checkout. BuildKit then has no timestamps
to rewrite (see :mod:`dlbase.engine.buildkit`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from dlbase.core import errors, scratchdirs
from dlbase.define.spec import FILE_EPOCH

SCRATCH_PREFIX = "dlbase-context-"
#: Never part of a context (the project's .dockerignore says the same).
_SKIP = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc")


def copy_sources(dockerfile_text: str) -> list[str]:
    """The context paths the Dockerfile's COPY and ADD steps read (in order, no repeats).

    A COPY ``--from`` another stage or image reads no context; flags are skipped; the last
    word is the destination. Heredocs and JSON-form COPY are not used by these templates and
    are refused rather than guessed at."""
    found: list[str] = []
    for number, line in enumerate(dockerfile_text.splitlines(), 1):
        words = line.split(None, 1)
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1] if len(words) > 1 else ""
        if rest.lstrip().startswith("[") or "<<" in rest:
            raise errors.InvalidInput(f"Dockerfile line {number}: {words[0]} in JSON or heredoc form cannot be staged",
                                      hint="write it as `COPY SRC... DEST`")
        args = shlex.split(rest)
        if any(a.startswith("--from") for a in args):
            continue
        for src in [a for a in args if not a.startswith("--")][:-1]:
            if src not in found:
                found.append(src)
    return found


def _inside(root: Path, rel: str) -> Path:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts:
        raise errors.InvalidInput(f"COPY source {rel!r} is outside the build context",
                                  hint="COPY sources are paths inside the project")
    return root / path


def _normalise(top: Path) -> None:
    """Folders 0755, files 0644 or 0755, everything dated FILE_EPOCH (children first, so
    dating a file does not change its folder's time afterwards)."""
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                os.utime(path, (FILE_EPOCH, FILE_EPOCH), follow_symlinks=False)
                continue
            mode = path.stat().st_mode
            path.chmod(0o755 if mode & 0o111 else 0o644)
            os.utime(path, (FILE_EPOCH, FILE_EPOCH))
        for name in dirnames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(0o755)
            os.utime(path, (FILE_EPOCH, FILE_EPOCH), follow_symlinks=False)
    top.chmod(0o755)
    os.utime(top, (FILE_EPOCH, FILE_EPOCH))


def stage(root: Path, dockerfile: str, into: Path) -> None:
    """Copy ``dockerfile`` (relative to ``root``), .dockerignore and every COPY source into
    ``into`` (an empty folder), then date and chmod them all."""
    df = _inside(root, dockerfile)
    try:
        text = df.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.Missing(f"Dockerfile {df} cannot be read: {exc.strerror or exc}") from None
    wanted = [dockerfile, *([".dockerignore"] if (root / ".dockerignore").is_file() else []), *copy_sources(text)]
    for rel in wanted:
        src = _inside(root, rel.rstrip("/") or ".")
        dest = into / src.relative_to(root)
        if not src.exists():
            continue  # the build names the missing source itself, as it would from the project
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, symlinks=True, ignore=_SKIP, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest, follow_symlinks=False)
    _normalise(into)


@contextlib.contextmanager
def staged(root: str | os.PathLike[str], dockerfile: str, work_dir: str | os.PathLike[str] | None) -> Iterator[Path]:
    """A staged context for building ``dockerfile`` of ``root``, removed afterwards (on
    failure and Ctrl-C too; a killed run's is swept by the next)."""
    scratchdirs.sweep(work_dir, SCRATCH_PREFIX)
    scratch = scratchdirs.make(work_dir, SCRATCH_PREFIX)
    try:
        context = scratch / "context"
        context.mkdir()
        stage(Path(root), dockerfile, context)
        yield context
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
