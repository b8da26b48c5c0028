"""Where dlbase keeps what every checkout on a machine may share (the wheelhouse), in one place.

Why outside the checkout: the wheelhouse of a full image is ~3 GB downloaded from PyPI.
Kept under each clone, every fresh clone and every CI run downloaded it again (and CI
deleted it at the end). Its content is keyed by file name and checked against each
lock's sha256 pins on every use, so one copy can serve any number of clones safely.

Order: ``DLBASE_CACHE_DIR`` (used as given), else ``$XDG_CACHE_HOME/dlbase`` (when it is
an absolute path, as the XDG base directory spec requires), else ``~/.cache/dlbase``.
"""

from __future__ import annotations

import os
from pathlib import Path

from dlbase.core.errors import InvalidInput

CACHE_ENV = "DLBASE_CACHE_DIR"


def cache_dir() -> Path:
    """The machine's dlbase cache folder (not created here: the writer creates what it fills)."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "dlbase"
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no passwd entry: nowhere to guess
        raise InvalidInput("cannot find a cache folder: HOME is not set",
                           hint=f"set {CACHE_ENV} (or XDG_CACHE_HOME) to a writable folder") from None
    return home / ".cache" / "dlbase"
