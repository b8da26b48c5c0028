"""Finding the project folder (the one holding ``images/matrix.yaml``), in one place.

Its own tiny module so that modules which must not load the matrix (the wheelhouse)
and :mod:`dlbase.define.project` find the same folder the same way. Never the folder this
package was installed from: an installed dlbase works on whatever project it is given.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "DLBASE_ROOT"


def search_root(start: Path | None = None) -> Path | None:
    """``DLBASE_ROOT`` when set, else the nearest folder from ``start`` (default: the
    working directory) upwards that holds ``images/matrix.yaml``; None when none does."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).resolve()
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:  # the working directory was deleted under us: nothing to search from
        return None
    for cand in (here, *here.parents):
        try:
            if (cand / "images" / "matrix.yaml").is_file():
                return cand
        except OSError:  # an unreadable folder on the way up is not a project; keep looking
            continue
    return None
