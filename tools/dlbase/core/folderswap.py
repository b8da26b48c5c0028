"""Replace a whole folder by a staged one in one rename, and undo the folders made for it.

Why: a database of several files (archives and their indexes) replaced file by file is,
half-way through a failed update, a mix of old and new that no one asked for. Built
complete in a staging folder beside it (same file system, so a rename is possible) and
swapped in with one ``renameat2(RENAME_EXCHANGE)``, a reader sees the old folder or the
new one, never a mix, and a failure before the swap leaves the old one untouched. Where
the kernel or file system has no exchange, two renames are used (the folder is then
absent for an instant, never mixed).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _renameat2():  # type: ignore[no-untyped-def]
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the platform cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_in(staged: Path, folder: Path) -> None:
    """Make ``staged`` be ``folder`` (whose old content is removed)."""
    if not folder.exists():
        os.rename(staged, folder)
        return
    if _exchange(staged, folder):
        shutil.rmtree(staged, ignore_errors=True)  # holds the old content now
        return
    old = staged.with_name(staged.name + ".old")
    os.rename(folder, old)
    try:
        os.rename(staged, folder)
    except OSError:
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def carry_over(folder: Path, staged: Path) -> None:
    """Hard-link (or copy) into ``staged`` every file of ``folder`` it does not have yet,
    so the swap keeps what the update did not replace."""
    if not folder.is_dir():
        return

    def link(src: str, dst: str) -> None:
        if os.path.lexists(dst):
            return
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(folder, staged, symlinks=True, dirs_exist_ok=True, copy_function=link)


def make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, deepest first."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing


def remove_empty(created: list[Path]) -> None:
    """Remove the folders :func:`make_parents` created, where they are still empty."""
    for path in created:
        with contextlib.suppress(OSError):
            path.rmdir()
