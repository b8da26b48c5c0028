"""Upstream bugs the suite pins, gated on the installed augmentation release.

A line installs albumentations (2.0.8, MIT, frozen) or its successor albumentationsx
(AGPL-3.0; imported under the same name, `albumentations`). A bug known in releases up to
``last_buggy`` is a strict xfail there, so a fix in that range shows up as XPASS; on a later
release the test runs as a plain test: a fix upstream is a pass, a regression a failure.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTIONS = ("albumentations", "albumentationsx")


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("+")[0].split(".")[:3] if p.isdigit())


def installed() -> tuple[str, str]:
    """(distribution, version) of the installed augmentation library."""
    for dist in DISTRIBUTIONS:
        try:
            return dist, version(dist)
        except PackageNotFoundError:
            continue
    import albumentations

    return "albumentations", albumentations.__version__


DISTRIBUTION, VERSION = installed()


def affected(last_buggy: str) -> bool:
    """True when the installed release is one the bug is known in."""
    return version_tuple(VERSION) <= version_tuple(last_buggy)


def known_bug(last_buggy: str, reason: str):  # -> pytest.MarkDecorator
    """A strict xfail while the installed release is <= ``last_buggy``; no mark after it."""
    import pytest  # here, so seed_pipelines (also run by the bench, outside pytest) can import this module

    return pytest.mark.xfail(affected(last_buggy), strict=True,
                             reason=f"{reason} (known up to {last_buggy}; installed {DISTRIBUTION} {VERSION})")
