"""The one click parameter type for options and arguments that name a file or a folder.

Why: ``click.Path`` turns an empty string into ``Path("")``, which is the current folder.
``--db ''`` (a ``"$DB"`` whose variable is unset) then wrote a database into the project
root, and ``scan --db ''`` read the whole project as one. An empty value is refused here,
for every path option of every verb, as a usage error (exit 2) that says what it names.
"""

from __future__ import annotations

from typing import Any

import click


class PathParam(click.Path):
    """``click.Path`` that refuses an empty (or blank) value instead of reading it as "here"."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            what = "folder" if not self.file_okay else "file" if not self.dir_okay else "file or folder"
            self.fail(f"is empty: it names a {what}, and an empty value is not read as the current "
                      "folder (is a shell variable unset?)", param, ctx)
        return super().convert(value, param, ctx)
