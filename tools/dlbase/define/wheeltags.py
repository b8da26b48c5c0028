"""Wheel tags of a target: which wheels a CPython on a manylinux platform installs.

Why here, at the define level: the lock's target (``x86_64-manylinux_2_28``) decides which
wheel of a release is filled into the wheelhouse (build/) and whose metadata describes a
release (define/wheelmeta.py); one derivation serves both. Tags come from
``packaging.tags``, the same code pip uses, never from string suffixes (a macOS
``..._x86_64`` wheel is not a Linux one).
"""

from __future__ import annotations

import re

from packaging.tags import Tag, compatible_tags, cpython_tags

from dlbase.core.errors import InvalidInput


def platform_tags_for(platform: str) -> list[str]:
    """Wheel platform tags accepted on uv's ``--python-platform`` target, best first.

    ``x86_64-manylinux_2_28`` -> ``manylinux_2_28_x86_64``, ..., ``manylinux_2_17_x86_64``,
    ``manylinux2014_x86_64``, ..., ``manylinux1_x86_64``: exactly what pip inside a glibc
    2.28 container would accept, so the wheelhouse holds what the build will install.
    """
    m = re.fullmatch(r"(?P<arch>x86_64|aarch64|ppc64le|s390x|i686)-manylinux_?(?P<maj>2)_(?P<min>\d+)",
                     platform.strip())
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    if m is None:
        m2 = re.fullmatch(r"(?P<arch>x86_64|aarch64|ppc64le|s390x|i686)-manylinux(?P<y>2014|2010|1)",
                          platform.strip())
        if m2 is None:
            raise InvalidInput(
                f"cannot derive wheel platform tags from platform '{platform}'",
                hint="pass platform_tags explicitly (e.g. ['manylinux_2_28_x86_64', ...]) "
                     "or use the form <arch>-manylinux_2_<minor>",
            )
        arch, minor = m2["arch"], {"2014": 17, "2010": 12, "1": 5}[m2["y"]]
    else:
        arch, minor = m["arch"], int(m["min"])
    tags: list[str] = []
    for mn in range(minor, 4, -1):
        tags.append(f"manylinux_2_{mn}_{arch}")
        if mn in legacy:
            tags.append(f"{legacy[mn]}_{arch}")
    return tags


def target_tags(python_version: str, platform_tags: list[str]) -> list[Tag]:
    """All wheel tags a CPython ``python_version`` interpreter on ``platform_tags`` accepts,
    in pip's order of preference (most specific first)."""
    try:
        major, minor = (int(x) for x in python_version.split(".")[:2])
    except ValueError as exc:
        raise InvalidInput(f"python version '{python_version}' is not like '3.11'") from exc
    pv = (major, minor)
    plats = list(platform_tags)
    if not plats:
        raise InvalidInput("no platform tags given", hint="see platform_tags_for()")
    tags = list(cpython_tags(python_version=pv, platforms=plats))
    tags += list(compatible_tags(python_version=pv, interpreter=f"cp{major}{minor}", platforms=plats))
    seen: set[Tag] = set()
    return [t for t in tags if not (t in seen or seen.add(t))]
