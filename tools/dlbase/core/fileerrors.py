"""An OSError on a file, told as a :class:`~dlbase.core.errors.FileProblem` (exit 2).

Why a module of its own: every writer and reader of files (atomic writes, the file set of
`dlbase render`, YAML, locks, the CLI's last-resort handler) needs the same translation of
errno into "what went wrong, what to do", and none of them is about addresses, which is
what :mod:`dlbase.core.validate` checks. Nothing here writes or talks to the network.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from dlbase.core.errors import FileProblem


def _reason(exc: OSError) -> tuple[str, str]:
    """(what went wrong, what to do) for an OSError on a file."""
    code = exc.errno
    if isinstance(exc, FileNotFoundError):
        return "does not exist", "check the path (run dlbase from the repository root, or set DLBASE_ROOT)"
    if isinstance(exc, FileExistsError):
        return ("exists already, or a file is where its folder should be",
                "remove or rename what is in the way, or choose another path")
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file", "point at the file itself"
    if isinstance(exc, NotADirectoryError):
        return "has a path part that is a file, not a folder", "remove or rename the file that is in the way"
    if isinstance(exc, PermissionError) or code in (errno.EPERM, errno.EACCES):
        return ("is not accessible (permission denied or immutable)",
                "fix its permissions/owner (ls -l; lsattr for chattr +i) or run as a user that may use it")
    if code == errno.EROFS:
        return "is on a read-only file system", "run where the repository is writable"
    if code == errno.ENOSPC:
        return "cannot be written: no space left on the device", "free disk space and try again"
    return exc.strerror or str(exc), "check the file and try again"


def file_error(path: Path | str, exc: OSError, *, action: str = "read") -> FileProblem:
    """The typed error for an OSError on ``path``: one line with path and reason, a hint."""
    why, hint = _reason(exc)
    return FileProblem(f"cannot {action} {path}: it {why}", hint=hint)


def not_a_file(path: Path) -> str | None:
    """What is at ``path`` instead of a regular file ("a folder", "a character device"...),
    or None when it is a regular file or nothing is there (a dangling link is nothing)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise file_error(path, exc) from None
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))
    return next((words for test, words in kinds if test(mode)), "not a regular file")


def is_file(path: Path, display: str | None = None, *, what: str = "file") -> bool:
    """True when ``path`` is a regular file, False when nothing is there; a folder, a device,
    a pipe or a socket where a file is wanted is a :class:`FileProblem` (exit 2) saying
    which, never "does not exist" (``Path.is_file()`` is False for all of them alike).

    Every reader asks this before it reads, or before it treats the file as absent."""
    found = not_a_file(path)
    if found is None:
        return Path(path).is_file()
    name = display or str(path)
    hint = (f"point at the file inside it, or move the folder away from {name}" if found == "a folder"
            else "point at a regular file")
    raise FileProblem(f"{what} {name} is {found}, not a file", hint=hint)


def is_dir(path: Path, display: str | None = None, *, what: str = "folder") -> bool:
    """True when ``path`` is a folder, False when nothing is there; a file or a device where a
    folder is wanted is a :class:`FileProblem` (exit 2) saying which, not "no such folder"."""
    found = not_a_file(path)
    if found == "a folder" or not Path(path).exists():
        return found == "a folder"
    name = display or str(path)
    raise FileProblem(f"{what} {name} is {found or 'a file'}, not a folder", hint=f"name the {what} itself")


def read_text(path: Path, display: str | None = None, *, what: str = "file") -> str:
    """Read a UTF-8 text file; every way that can fail is a :class:`FileProblem` naming it."""
    name = display or str(path)
    try:
        is_file(path, name, what=what)
        data = Path(path).read_bytes()
    except OSError as exc:
        raise file_error(name, exc) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FileProblem(f"{name}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                          f"at offset {exc.start})",
                          hint="restore the file (git checkout -- FILE) or save it as UTF-8") from None


def writable_dir(path: Path) -> None:
    """Fail before work starts when ``path`` (a folder dlbase writes into) is not usable.

    The nearest folder that exists is tried with a real temporary file, not only with
    os.access: root passes every access check, yet cannot write on a read-only or
    immutable file system. The probe leaves nothing behind and creates no folder."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise FileProblem(f"cannot write into {path}: {probe} is a file, not a folder",
                          hint=f"remove or rename {probe}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise FileProblem(f"cannot write into {path}: {probe} is not writable",
                          hint="fix its permissions, or run as a user that may write there")
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".dlbase-probe-"):
            pass
    except OSError as exc:
        raise file_error(probe, exc, action="write into") from None
