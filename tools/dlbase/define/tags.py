"""Image tags: an immutable one that names exactly what is inside, and a moving one.

The immutable tag is built from versions *read back from the built image* (see
build.py), never from configuration alone, and ends with the lock hash, so two images
with the same tag have the same Python environment. The moving tag follows the newest
build of a line (`2.6-cu124-runtime-debian12`) for people who want updates.
"""

from __future__ import annotations

import re

LOCK_PLACEHOLDER = "<lock>"
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def immutable_tag(*, torch: str, cuda: str, cudnn: str, python: str, flavor: str, os_name: str,
                  lock_hash: str) -> str:
    """e.g. 2.6.0-cuda12.4-cudnn9-py3.11-runtime-debian12-1a2b3c4d5e6f"""
    tag = (f"{torch}-cuda{_major_minor(cuda)}-cudnn{cudnn.split('.')[0]}-py{_major_minor(python)}"
           f"-{flavor}-{os_name}-{lock_hash}")
    return _valid(tag)


def moving_tag(*, torch: str, line: str, flavor: str, os_name: str) -> str:
    """e.g. 2.6-cu124-runtime-debian12"""
    return _valid(f"{_major_minor(torch)}-{line}-{flavor}-{os_name}")


def _valid(tag: str) -> str:
    if not _TAG_RE.match(tag.replace(LOCK_PLACEHOLDER, "x")):
        raise ValueError(f"'{tag}' is not a valid Docker tag")
    return tag
