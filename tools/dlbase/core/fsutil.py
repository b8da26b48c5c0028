"""Writing files so that a crash never leaves a partial one behind: the one home for it.

Shared by every writer of committed or generated files (matrix, Dockerfiles, locks), by
:mod:`dlbase.core.fileset` (many files at once) and by the signing keys. Each write goes
to a temporary file beside the target, is flushed to disk and renamed over it.

The temporary file's mode, without ever touching the process umask (os.umask is
process-wide: reading it by setting it races with every other thread that creates a file):
- asked for (``mode=0o600`` for a private key): the file is created with that mode and
  fchmod'ed to exactly it, so it is never readable by others, not even for a moment;
- not asked for, replacing a file: the mode of the file it replaces (an executable stays
  executable);
- not asked for, a new file: created with 0666, which the kernel reduces by the umask -
  ordinary permissions. mkstemp's 0600 would otherwise make a file unreadable to the
  image's non-root user once COPY puts it into an image.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path


class TargetExists(FileExistsError):
    """``overwrite=False`` and the target exists: the caller says what that means."""


class NoHardLinks(OSError):
    """``overwrite=False`` on a filesystem without hard links (vfat, some FUSE and SMB
    mounts): creating without ever replacing needs link(2), so the caller is told, not
    handed an OSError."""


# link(2) errors that mean "this filesystem has no hard links".
NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}


def _link(src: Path, dst: Path) -> None:
    """os.link, by name so a test can stand in a filesystem without hard links."""
    os.link(src, dst)


def _existing_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def stage(path: Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` into a new temporary file beside ``path`` (same folder, so a rename is
    atomic), with the mode described above, flushed to disk; returns the temporary path.
    The caller renames it into place or removes it. Raises OSError."""
    want = mode if mode is not None else _existing_mode(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666 if want is None else want & 0o777)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            if want is not None:
                os.fchmod(fh.fileno(), want)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_bytes_atomic(path: Path, data: bytes, *, mode: int | None, overwrite: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage(path, data, mode=mode)
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                _link(tmp, path)  # refuses when path exists, even if it appeared a moment ago
            except FileExistsError:
                raise TargetExists(errno.EEXIST, "already exists", str(path)) from None
            except OSError as exc:
                if exc.errno in NO_LINKS:
                    raise NoHardLinks(exc.errno, exc.strerror, str(path)) from None
                raise
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None, overwrite: bool = True) -> None:
    """Write through a temp file + rename. ``overwrite=False`` never replaces an existing
    file (:class:`TargetExists`, for the caller to word); any other OSError becomes a
    FileProblem (exit 2) naming the file."""
    try:
        _write_bytes_atomic(path, data, mode=mode, overwrite=overwrite)
    except (TargetExists, NoHardLinks):
        raise
    except OSError as exc:
        from dlbase.core.fileerrors import file_error

        raise file_error(path, exc, action="write") from None


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """UTF-8 text through :func:`write_bytes_atomic`; an unwritable place is a FileProblem."""
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode)


def write_json_atomic(path: Path, body: object, *, sort_keys: bool = True) -> Path:
    """Reports, records and SBOMs: indented JSON, written atomically; returns the path."""
    import json

    write_text_atomic(path, json.dumps(body, indent=2, sort_keys=sort_keys, default=str) + "\n")
    return path
