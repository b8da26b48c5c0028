"""Ages a user gives (``--max-db-age 7``, a trust policy's ``max_age: 30d``), with bounds.

Why a module: an age is compared with a clock, and an unbounded one is not a stricter or
looser check but a crash or no check at all: ``99999999999999w`` overflowed
``timedelta`` (an internal error), and ``--max-db-age nan`` compares false with every
age, so the database-age warning could never fire. One ceiling for every age, and NaN and
infinity refused, here, for every option and file that takes one.
"""

from __future__ import annotations

import datetime as dt
import math

from dlbase.core.errors import InvalidInput

#: The longest age accepted, in days (about 270 years): longer than any freshness limit
#: means anything, far inside what ``timedelta`` and a float hold.
MAX_DAYS = 100_000
#: The units of an age written as text: hours, days, weeks.
UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}


def days(value: float, what: str) -> float:
    """``value`` (days) when it is a finite number from 0 to :data:`MAX_DAYS`; else InvalidInput."""
    if not math.isfinite(value) or value < 0 or value > MAX_DAYS:
        raise InvalidInput(f"{what} {value!r} is not an age in days from 0 to {MAX_DAYS:,}",
                           hint="give a number of days, like 7 (NaN and infinity are not ages)")
    return value


def age(count: str, unit: str, text: str, what: str) -> dt.timedelta:
    """``count`` ``unit``s (``"30"``, ``"d"``) as a timedelta of at most :data:`MAX_DAYS` days."""
    step = UNITS[unit]
    limit = MAX_DAYS * dt.timedelta(days=1) // step
    if len(count) > len(str(limit)) or int(count) > limit:
        raise InvalidInput(f"{what} {text[:40]!r} is longer than {MAX_DAYS:,} days",
                           hint="give an age like 12h, 30d or 2w")
    return int(count) * step
