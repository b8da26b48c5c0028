"""What a driver version, a compute capability and a CUDA arch list mean: one rule.

Pure functions of text, no engine and no host probe, so `trust.policy` (a consumer's
check, which must work without Docker), `verify.doctor` (the host) and the tests share
them. The in-image preflight (runtime/preflight.py) runs as ``python -I -S`` and cannot
import dlbase: it carries the same few lines, and tests/unit/data/shared_rules.json is the
table both must answer alike (tests/unit/test_shared_rules.py runs both over it). A test,
not a data file shipped into every image, because the rule is a handful of lines while a
data file would be one more thing the preflight must find and parse at every container
start.

The rules:

- A driver version is dot-separated numbers at the start of the text ("550.54.15",
  "570.26"); trailing text is ignored ("535.104.05-1" is 535.104.5) and anything else
  ("[N/A]", "") is no version at all (None), never a tuple that compares as "old".
- A compute capability is "MAJOR.MINOR"; nvidia-smi's "[N/A]" (MIG, some vGPUs),
  "[Not Supported]" or "N/A" is None: unknown, which is neither a pass nor a failure.
- An arch list entry is ``sm_XY`` / ``compute_XY`` with an optional suffix ``a`` or ``f``
  (``sm_90a``, ``sm_100f``, ``compute_120``); the last digit is the minor, the rest the
  major (``sm_100`` is 10.0). A cubin for sm_XY runs on X.Z for Z >= Y (same major); an
  ``a`` (architecture-specific) cubin runs on X.Y exactly; ``f`` (family) runs like the
  plain one. PTX for compute_XY is JIT-compiled on any GPU >= X.Y (``a`` on X.Y only,
  ``f`` on the same major only).
"""

from __future__ import annotations

import re
from typing import NamedTuple

NATIVE, PTX, NONE = "native", "ptx", "no"

_VERSION_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)*)")
_CAP_RE = re.compile(r"\s*([0-9]+)\.([0-9]+)\s*")
_ARCH_RE = re.compile(r"(sm|compute)_([0-9]+)([0-9])([af]?)")


class Arch(NamedTuple):
    """One entry of a CUDA arch list, parsed: ``sm_90a`` is Arch('sm', 9, 0, 'a')."""

    kind: str  # "sm" (a cubin) or "compute" (PTX)
    major: int
    minor: int
    suffix: str  # "", "a" or "f"

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.major}{self.minor}{self.suffix}"

    def runs_on(self, cap: tuple[int, int]) -> bool:
        """Whether this cubin runs (``sm``) or this PTX JIT-compiles (``compute``) on ``cap``."""
        if self.suffix == "a":
            return (self.major, self.minor) == cap
        if self.kind == "sm" or self.suffix == "f":
            return self.major == cap[0] and self.minor <= cap[1]
        return (self.major, self.minor) <= cap


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    """(550, 54, 15) from "550.54.15"; None when the text does not start with a version."""
    match = _VERSION_RE.match(text or "")
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def at_least(version: str | None, floor: str) -> bool | None:
    """``version >= floor`` numerically; None when either is not a version."""
    have, need = version_tuple(version), version_tuple(floor)
    if have is None or need is None:
        return None
    return have >= need


def compute_capability(text: str | None) -> tuple[int, int] | None:
    """(9, 0) from "9.0"; None for "[N/A]", "[Not Supported]", "" and anything else."""
    match = _CAP_RE.fullmatch(text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def sm_name(cap: tuple[int, int]) -> str:
    """The GPU's own arch name: (9, 0) -> "sm_90", (10, 0) -> "sm_100"."""
    return f"sm_{cap[0]}{cap[1]}"


def arch(entry: str) -> Arch | None:
    """An arch list entry parsed, or None when it is not one (``sm_9``, ``hopper``)."""
    match = _ARCH_RE.fullmatch(entry.strip())
    if match is None:
        return None
    return Arch(match.group(1), int(match.group(2)), int(match.group(3)), match.group(4))


def support(cap: tuple[int, int], arch_list: list[str] | tuple[str, ...]) -> tuple[str, str | None]:
    """How a GPU of capability ``cap`` runs a build for ``arch_list``.

    ("native", best sm entry) when a cubin runs on it (its own minor before a lower one, a plain
    entry before an `a` one),
    ("ptx", newest usable compute entry) when only the driver's JIT helps, ("no", None).
    """
    parsed = [a for a in (arch(e) for e in arch_list) if a is not None]
    cubins = [a for a in parsed if a.kind == "sm" and a.runs_on(cap)]
    if cubins:
        best = max(cubins, key=lambda a: (a.minor, a.suffix == ""))
        return NATIVE, best.name
    ptx = [a for a in parsed if a.kind == "compute" and a.runs_on(cap)]
    if ptx:
        return PTX, max(ptx, key=lambda a: (a.major, a.minor)).name
    return NONE, None
