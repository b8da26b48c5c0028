"""Where a dlbase project's files are, and loading its matrix and compat table together.

Commands run from anywhere inside the repository (or with DLBASE_ROOT set) find the
same files, so `make` targets, CI and a user in a sub-folder agree on what is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from dlbase.define import compat as compat_mod
from dlbase.define import matrix as matrix_mod
from dlbase.core.errors import Missing
from dlbase.core.root import ROOT_ENV, search_root


def find_root(start: Path | None = None, *, need_matrix: bool = True) -> Path:
    """The folder holding images/matrix.yaml: DLBASE_ROOT, else the nearest parent.

    A DLBASE_ROOT that is no project is named in the error: the user set it once in a
    shell profile and no longer thinks of it, so "images/matrix.yaml: file not found"
    would send them looking in the wrong folder. ``need_matrix`` is False when the
    caller names its own matrix file (--matrix), so only the folder must exist."""
    found = search_root(start)
    env = os.environ.get(ROOT_ENV)
    if found is not None and env:
        hint = (f"point {ROOT_ENV} at the folder that holds images/matrix.yaml (the project), "
                f"or unset it to use the project around the working directory")
        if not found.is_dir():
            raise Missing(f"{ROOT_ENV}={env}: {'no such folder' if not found.exists() else 'not a folder'}",
                          hint=hint)
        if need_matrix and not (found / "images" / "matrix.yaml").is_file():
            raise Missing(f"{ROOT_ENV}={env}: no images/matrix.yaml in {found}", hint=hint)
    if found is not None:
        return found
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:
        raise Missing("the working directory no longer exists",
                      hint="cd into the dlbase repository, or set DLBASE_ROOT") from None
    raise Missing(f"no images/matrix.yaml in {here} or any parent folder",
                  hint="run dlbase inside the dlbase repository, or set DLBASE_ROOT")


@dataclass
class Project:
    root: Path
    matrix_file: Path
    compat_file: Path

    @classmethod
    def discover(cls, root: Path | None = None, matrix: Path | None = None,
                 compat: Path | None = None) -> "Project":
        root = root or find_root(need_matrix=matrix is None)
        return cls(root=root, matrix_file=matrix or root / "images" / "matrix.yaml",
                   compat_file=compat or root / "images" / "compat.yaml")

    def rel(self, path: Path) -> str:
        """A path as the user should read it: relative to the repository when inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def state_dir(self) -> Path:
        """Untracked working state: build logs, reports, verification records (the wheelhouse
        lives in the machine's cache unless the project has its own; see build/wheelhouse.py)."""
        return self.root / ".dlbase"

    def variant_dir(self, name: str) -> Path:
        return self.images_dir / name

    @cached_property
    def matrix(self) -> matrix_mod.Matrix:
        return matrix_mod.load(self.matrix_file, self.rel(self.matrix_file))

    @cached_property
    def compat(self) -> compat_mod.Compat:
        return compat_mod.load(self.compat_file, self.rel(self.compat_file))
