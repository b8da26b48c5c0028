"""OSV records (https://ossf.github.io/osv-schema/): which versions an advisory affects.

A record lists ``affected`` entries, each a package in an ecosystem with ``ranges``
(``ECOSYSTEM``/``SEMVER`` events: ``introduced``, ``fixed``, ``last_affected``,
``limit``) and/or an explicit ``versions`` list. ``GIT`` ranges name commits, which an
installed package does not carry: they are not evaluated (the ``versions`` list that
usually accompanies them is). A ``withdrawn`` record affects nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from dlbase.vuln import versions

_ZERO = "0"


def package_key(ecosystem: str, name: str) -> tuple[str, str]:
    """The index key of a package: (ecosystem, name) with PyPI names PEP 503-normalised
    (``PyTorch_Lightning`` and ``pytorch-lightning`` are one project); dpkg names are
    already lower-case and compared as they are."""
    eco = release_ecosystem(ecosystem)
    return eco, (canonicalize_name(name) if versions.family(eco) == "PyPI" else name)


def release_ecosystem(ecosystem: str) -> str:
    """An OSV ecosystem string as dlbase names an image's: ``Ubuntu:22.04:LTS`` ->
    ``Ubuntu:22.04`` (the standard archive); ``Debian:12`` and ``PyPI`` stay."""
    return re.sub(r":LTS$", "", ecosystem.strip())


def applies_to(record_ecosystem: str) -> bool:
    """Ubuntu Pro (ESM) advisories describe packages a plain image does not install."""
    return not record_ecosystem.startswith("Ubuntu:Pro:")


@dataclass(frozen=True)
class Hit:
    """Why an affected entry matches an installed version: the range or list that
    contains it, and the versions that fix it (empty: no fix published)."""

    fixed: tuple[str, ...]
    last_affected: tuple[str, ...]
    via: str  # "range" or "versions"


def is_withdrawn(record: dict[str, Any]) -> bool:
    return bool(record.get("withdrawn"))


def ids_of(record: dict[str, Any]) -> list[str]:
    """The record's own id, then its aliases and upstream ids (CVE-..., GHSA-...)."""
    seen: list[str] = [str(record.get("id", ""))]
    for other in list(record.get("aliases") or []) + list(record.get("upstream") or []):
        if other and str(other) not in seen:
            seen.append(str(other))
    return seen


class Unevaluable(Exception):
    """An affected entry that names the installed package but cannot be evaluated: a field
    of the wrong type, a range event its ecosystem cannot order (``introduced: "banana"``),
    or an installed version that does not parse. The scan reports and counts it; it is
    never taken for "not affected"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def match(affected: dict[str, Any], ecosystem: str, version: str) -> Hit | None:
    """Whether ``version`` of the affected entry's package is affected; None when not;
    :class:`Unevaluable` when no range says so and one of them cannot be evaluated.

    The explicit ``versions`` list counts first (it is what a database enumerated); then
    every ECOSYSTEM or SEMVER range whose events are evaluated with the ecosystem's own
    version order (:mod:`dlbase.vuln.versions`)."""
    shape = _shape_problem(affected)
    if shape:
        raise Unevaluable(shape)
    listed = affected.get("versions") or []
    fixes = _fix_events(affected)
    if version in listed or _public(ecosystem, version) in listed:
        return Hit(fixed=fixes[0], last_affected=fixes[1], via="versions")
    unordered = None
    for rng in affected.get("ranges") or []:
        kind = rng.get("type")
        if kind not in ("ECOSYSTEM", "SEMVER"):
            continue
        hit = _in_range(rng, ecosystem, version, kind)
        if hit is not None:
            return hit
        unordered = unordered or _order_problem(rng, ecosystem, version, kind)
    if unordered:
        raise Unevaluable(unordered)
    return None


_EVENTS = ("introduced", "fixed", "last_affected", "limit")


def _shape_problem(affected: dict[str, Any]) -> str | None:
    """What in an affected entry is not of the type OSV's schema gives it (None: all is)."""
    listed = affected.get("versions")
    if listed is not None and not (isinstance(listed, list) and all(isinstance(v, str) for v in listed)):
        return "'versions' is not a list of strings"
    ranges = affected.get("ranges")
    if ranges is None:
        return None
    if not isinstance(ranges, list):
        return "'ranges' is not a list"
    for i, rng in enumerate(ranges):
        if not isinstance(rng, dict) or not isinstance(rng.get("type"), str):
            return f"ranges[{i}] is not an object with a 'type'"
        events = rng.get("events")
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return f"ranges[{i}].events is not a list of objects"
        for j, event in enumerate(events):
            bad = next((k for k in _EVENTS if k in event and not isinstance(event[k], str)), None)
            if bad:
                return f"ranges[{i}].events[{j}].{bad} is not a version string"
    return None


def _order_problem(rng: dict[str, Any], ecosystem: str, version: str, kind: str) -> str | None:
    """Why a range cannot be evaluated for ``version`` (None: it can, and does not contain it)."""
    if versions.parse(ecosystem, version, range_type=kind) is None:
        return f"the installed version {version!r} is not a {versions.family(ecosystem)} version ({kind} range)"
    for event in rng.get("events") or []:
        for name in _EVENTS:
            raw = event.get(name)
            if raw is None or (name == "introduced" and raw == _ZERO):
                continue
            if versions.parse(ecosystem, raw, range_type=kind) is None:
                return f"range event {name}: {raw[:60]!r} is not a {versions.family(ecosystem)} version ({kind} range)"
    return None


def _public(ecosystem: str, version: str) -> str:
    """PyPI's ``2.6.0+cu124`` is a local build of ``2.6.0``: the release lists name the latter."""
    parsed = versions.parse(ecosystem, version) if versions.family(ecosystem) == "PyPI" else None
    return parsed.public if parsed is not None else version


def _ordered(ecosystem: str, version: str, kind: str) -> Any | None:
    """A comparable value for a range event or the installed version. PyPI's ranges are
    about public releases: ``2.6.0+cu118`` (a PyTorch-index wheel) is the 2.6.0 that
    ``last_affected: 2.6.0`` names, while PEP 440 alone sorts it after 2.6.0, so local
    parts are dropped on both sides."""
    parsed = versions.parse(ecosystem, version, range_type=kind)
    if parsed is None or kind != "ECOSYSTEM" or versions.family(ecosystem) != "PyPI":
        return parsed
    return versions.parse(ecosystem, parsed.public)


def _fix_events(affected: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    fixed, last = [], []
    for rng in affected.get("ranges") or []:
        if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        for event in rng.get("events") or []:
            if "fixed" in event:
                fixed.append(str(event["fixed"]))
            if "last_affected" in event:
                last.append(str(event["last_affected"]))
    return tuple(dict.fromkeys(fixed)), tuple(dict.fromkeys(last))


def _in_range(rng: dict[str, Any], ecosystem: str, version: str, kind: str) -> Hit | None:
    """The OSV evaluation: sort events by version, open an interval at each
    ``introduced``, close it at the next ``fixed`` (exclusive) or ``last_affected``
    (inclusive); ``limit`` events cap every interval from above (exclusive). The hit
    names the event that closes the interval holding ``version`` (its fix)."""
    here = _ordered(ecosystem, version, kind)
    if here is None:
        return None
    events: list[_Event] = []
    limits: list[Any] = []
    for event in rng.get("events") or []:
        for name in ("introduced", "fixed", "last_affected", "limit"):
            if name not in event:
                continue
            raw = str(event[name])
            if name == "introduced" and raw == _ZERO:
                events.append(_Event(None, name, raw))
                continue
            parsed = _ordered(ecosystem, raw, kind)
            if parsed is None:
                return None  # a range we cannot order is not evaluated rather than guessed
            if name == "limit":
                limits.append(parsed)
            else:
                events.append(_Event(parsed, name, raw))
    if limits and not any(here < lim for lim in limits):
        return None
    start: _Event | None = None
    for event in sorted(events):
        if event.name == "introduced":
            start = start or event
            continue
        if start is None:
            continue
        inside = start.version is None or here >= start.version
        if inside and ((event.name == "fixed" and here < event.version)
                       or (event.name == "last_affected" and here <= event.version)):
            return Hit(fixed=(event.raw,) if event.name == "fixed" else (),
                       last_affected=(event.raw,) if event.name == "last_affected" else (), via="range")
        start = None
    if start is not None and (start.version is None or here >= start.version):
        return Hit(fixed=(), last_affected=(), via="range")
    return None


_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2}


@dataclass(frozen=True)
class _Event:
    """One range event; sorts by version (``introduced: 0`` first), then introduced
    before a fix at the same version."""

    version: Any
    name: str
    raw: str

    def __lt__(self, other: "_Event") -> bool:
        if self.version is None or other.version is None:
            return self.version is None and (other.version is not None or _ORDER[self.name] < _ORDER[other.name])
        if self.version == other.version:
            return _ORDER[self.name] < _ORDER[other.name]
        return self.version < other.version
