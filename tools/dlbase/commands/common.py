"""Options and helpers shared by the verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from dlbase.project import Project


def project_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--matrix / --compat, for trying a different file without editing the committed one."""
    fn = click.option("--compat", "compat_file", type=click.Path(path_type=Path), default=None,
                      help="compatibility table (default images/compat.yaml)")(fn)
    fn = click.option("--matrix", "matrix_file", type=click.Path(path_type=Path), default=None,
                      help="variant matrix (default images/matrix.yaml)")(fn)
    return fn


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="print JSON for programs instead of a table")(fn)


def open_project(matrix_file: Path | None, compat_file: Path | None) -> Project:
    return Project.discover(matrix=matrix_file, compat=compat_file)
