"""The OSV ecosystems the matrix's images install from, derived from images/matrix.yaml.

Why derived: an image installs Python packages (OSV's ``PyPI``) on one of the matrix's
bases, whose ``os`` (``debian12``, ``ubuntu22.04``) names an OSV release ecosystem
(``Debian:12``, ``Ubuntu:22.04:LTS``). A base added to the matrix is then downloaded by
`dlbase scan --update` without a code change. The list is also what an ``--ecosystem``
is checked against: the name becomes a folder under the database, so it must be one of
OSV's names, never a path (``/abs``, ``../x``).
"""

from __future__ import annotations

import re

from dlbase.core.errors import InvalidInput
from dlbase.define.matrix import Matrix

PYPI = "PyPI"
_OS_RE = re.compile(r"(?P<distro>debian|ubuntu)(?P<release>\d+(?:\.\d+)?)")


def of_os(os_name: str) -> str | None:
    """OSV's ecosystem for a base's ``os``: ``debian12`` -> ``Debian:12``, ``ubuntu22.04`` ->
    ``Ubuntu:22.04:LTS`` (an even year's April release is LTS; OSV files those apart).
    None for an OS OSV has no ecosystem for here."""
    m = _OS_RE.fullmatch(os_name.strip().lower())
    if m is None:
        return None
    release = m["release"]
    if m["distro"] == "debian":
        return f"Debian:{release.split('.')[0]}"
    year, _, month = release.partition(".")
    lts = month == "04" and year.isdigit() and int(year) % 2 == 0
    return f"Ubuntu:{release}" + (":LTS" if lts else "")


def of_matrix(matrix: Matrix) -> tuple[str, ...]:
    """``PyPI`` (every image's packages), then each base's OS ecosystem once, in matrix order."""
    found = [PYPI] + [eco for eco in (of_os(base.os) for base in matrix.bases.values()) if eco]
    return tuple(dict.fromkeys(found))


def check(names: list[str], known: tuple[str, ...]) -> list[str]:
    """``names`` when each is one of ``known``; else an input error listing them."""
    bad = [n for n in names if n not in known]
    if bad:
        raise InvalidInput(f"--ecosystem {bad[0]!r} is not an OSV ecosystem the matrix's images use",
                           hint=f"choose from: {', '.join(known)} (derived from images/matrix.yaml's bases)")
    return names
