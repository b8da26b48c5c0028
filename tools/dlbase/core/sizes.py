"""Byte sizes as people type them (``8g``, ``512m``, ``65536k``, ``1073741824``): one grammar.

Used for ``--shm-size`` (`dlbase run`, `dlbase verify`, the engine's launcher) and, in the
image, for the preflight's ``DLBASE_MIN_SHM``. The grammar is Docker's own units, binary
multiples, case-insensitive: a number (``8``, ``1.5``), an optional unit ``k``, ``m``, ``g``
or ``t``, an optional trailing ``b`` (``8gb``, ``100b``). Nothing else: no spaces inside, no
exponent, no sign, no ``inf``. The value is passed to the daemon as bytes, so Docker's and
docker-py's own, slightly different, parsers never see the text.

The in-image preflight (runtime/preflight.py) runs as ``python -I -S`` and cannot import
dlbase, so it carries its own few lines of the same rule. The rule is shared through a
test rather than a data file shipped to both: tests/unit/data/shared_rules.json lists
inputs and the bytes (or the rejection) each must give, and tests/unit/test_shared_rules.py
runs both implementations over it. A data file would add a second file to every image that
the preflight must find and parse at each container start (and a new way for it to fail);
the rule is a dozen lines, so the table, not a loader, is what keeps the two equal.

Zero is rejected for shm: Docker reads ``--shm-size 0`` as "not set" and silently gives its
64 MB default, the very size that kills DataLoader workers.
"""

from __future__ import annotations

import re

from dlbase.core.errors import InvalidInput

#: /dev/shm given to the containers dlbase starts (`dlbase run`, `dlbase verify`): a DataLoader
#: with a few workers and prefetched batches of large images, and NCCL, fit with room to spare.
DEFAULT_SHM = "8g"
#: Below this, DataLoader workers die ("worker exited unexpectedly"); the preflight's default
#: DLBASE_MIN_SHM and doctor's floor for the host's /dev/shm (the shared table checks both).
MIN_SHM_BYTES = 1 << 30

UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kmgt]?)b?", re.IGNORECASE)
HINT = "a number with an optional unit k, m, g or t (binary multiples), e.g. 8g, 512m or 1073741824"


def parse(text: str) -> int:
    """The bytes ``text`` names; ValueError when it is not a size.

    >>> parse("8g"), parse("512MB"), parse("1.5k"), parse("100")
    (8589934592, 536870912, 1536, 100)
    """
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size")
    try:
        return int(float(match.group(1)) * UNITS[match.group(2).lower()])
    except OverflowError:  # 400 digits: float() gives inf
        raise ValueError(f"{text!r} is too large") from None


def shm_option(value: str, *, where: str = "--shm-size") -> int:
    """A ``--shm-size`` value in bytes, or InvalidInput (exit 2) with what to type instead."""
    try:
        size = parse(value)
    except ValueError:
        raise InvalidInput(f"{where}: '{value}' is not a size", hint=HINT) from None
    if size == 0:
        raise InvalidInput(f"{where}: '{value}' is zero, which Docker silently reads as its 64 MB default "
                           "(too small for DataLoader workers)",
                           hint=f"give a size such as {DEFAULT_SHM}, or share the host's /dev/shm with --ipc host "
                                "(`dlbase run`) / --ipc-host (`dlbase verify`)")
    return size


def canonical(n: int) -> str:
    """Bytes in the shortest exact form docker-py's own parser reads back the same (it knows
    b, k, m and g, not t): 8589934592 -> '8g', 1536 -> '1536'... so the summary a user sees
    and the daemon's value are one number.

    >>> canonical(8 << 30), canonical(1 << 40), canonical(1536), canonical(100)
    ('8g', '1024g', '1536', '100')
    """
    for unit in ("g", "m", "k"):
        if n >= UNITS[unit] and n % UNITS[unit] == 0:
            return f"{n // UNITS[unit]}{unit}"
    return str(n)
