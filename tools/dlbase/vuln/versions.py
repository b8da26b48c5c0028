"""Version order per OSV ecosystem, with each ecosystem's own well-kept library.

An advisory's range is only as right as the comparison behind it: PEP 440 for PyPI
(``2.6.0+cu124`` is 2.6.0; ``2.10.0`` is newer than ``2.9.1``), dpkg's algorithm for
Debian and Ubuntu (epochs, ``~`` sorting before everything, ``+deb12u3``), semver's
precedence for ``SEMVER`` ranges. A version a library cannot parse is None: the caller
skips that comparison instead of guessing.
"""

from __future__ import annotations

from typing import Any

import semver
from debian.debian_support import Version as DebianVersion
from packaging.version import InvalidVersion, Version as Pep440Version

#: OSV ecosystem families whose versions dpkg orders.
DPKG_FAMILIES = ("Debian", "Ubuntu")


def family(ecosystem: str) -> str:
    """``Debian:12`` -> ``Debian``; ``PyPI`` -> ``PyPI``."""
    return ecosystem.split(":", 1)[0]


def parse(ecosystem: str, version: str, *, range_type: str = "ECOSYSTEM") -> Any | None:
    """A comparable value for ``version`` in ``ecosystem`` (None when it does not parse)."""
    try:
        if range_type == "SEMVER":
            return semver.Version.parse(version.lstrip("v"), optional_minor_and_patch=True)
        fam = family(ecosystem)
        if fam == "PyPI":
            return Pep440Version(version)
        if fam in DPKG_FAMILIES:
            return DebianVersion(version)
    except (InvalidVersion, ValueError, TypeError):
        return None
    return None


def supported(ecosystem: str) -> bool:
    """Whether this module can order versions of ``ecosystem`` (others are not matched)."""
    return family(ecosystem) in ("PyPI", *DPKG_FAMILIES)
