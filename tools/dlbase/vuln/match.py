"""Installed packages x advisories -> findings, one row per vulnerability per package.

One vulnerability often has several records (PYSEC-2026-2286 and GHSA-63cw-57p8-fm3p
are CVE-2026-24747; DSA-5514-1 and DEBIAN-CVE-2023-4911 too): records of one package
that share an id or alias are one finding, with every id listed, the highest severity
and every fixed version, so the counts are vulnerabilities, not records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlbase.vuln import osv, severity, versions
from dlbase.vuln.db import Database
from dlbase.image.inventory import Package


@dataclass
class Finding:
    id: str
    aliases: list[str]
    package: str
    ecosystem: str
    installed_version: str
    installed: list[str]  # binary packages (dpkg) or the distribution itself
    purl: str
    fixed: list[str]
    last_affected: list[str]
    severity: str
    score: float | None
    summary: str
    records: list[str] = field(default_factory=list)
    purls: tuple[str, ...] = ()  # the SBOM's purls of the installed package(s): what VEX subcomponents match

    @property
    def ids(self) -> set[str]:
        return {self.id, *self.aliases}

    @property
    def fixed_in(self) -> str:
        if self.fixed:
            return ", ".join(self.fixed)
        if self.last_affected:
            return f"no fix (last affected {', '.join(self.last_affected)})"
        return "no fix published"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "aliases": self.aliases, "package": self.package, "ecosystem": self.ecosystem,
                "installed_version": self.installed_version, "installed": self.installed, "purl": self.purl,
                "fixed": self.fixed, "last_affected": self.last_affected, "fixed_in": self.fixed_in,
                "severity": self.severity, "score": self.score, "summary": self.summary,
                "records": self.records}


@dataclass
class Unevaluated:
    """A record about an installed package that the scanner could not evaluate (a malformed
    range, a version it cannot order): shown and counted, and it fails ``--fail-on``, since
    leaving it out would read as "not affected"."""

    id: str
    package: str
    ecosystem: str
    installed_version: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "package": self.package, "ecosystem": self.ecosystem,
                "installed_version": self.installed_version, "reason": self.reason}


def find(packages: list[Package], database: Database) -> list[Finding]:
    """Every advisory of the database that affects an installed package version."""
    return find_all(packages, database)[0]


def find_all(packages: list[Package], database: Database) -> tuple[list[Finding], list[Unevaluated]]:
    """The findings, and the records about installed packages that could not be evaluated."""
    findings: list[Finding] = []
    unevaluated: list[Unevaluated] = []
    for pkg in packages:
        if not versions.supported(pkg.ecosystem):
            continue
        mine: list[Finding] = []
        for record in database.advisories(pkg.ecosystem, pkg.name):
            try:
                finding = _match_record(record, pkg)
            except osv.Unevaluable as exc:
                unevaluated.append(Unevaluated(id=str(record.get("id")), package=pkg.name, ecosystem=pkg.ecosystem,
                                               installed_version=pkg.version, reason=exc.reason))
                continue
            if finding is not None:
                _merge_into(mine, finding)
        findings.extend(mine)
    return (sorted(findings, key=lambda f: (-severity.rank(f.severity), f.package, f.id)),
            sorted(unevaluated, key=lambda u: (u.package, u.id)))


def _match_record(record: dict[str, Any], pkg: Package) -> Finding | None:
    """The finding of one record for ``pkg``; None when no entry affects it;
    :class:`osv.Unevaluable` when none does and one could not be evaluated."""
    key = osv.package_key(pkg.ecosystem, pkg.name)
    unevaluable: osv.Unevaluable | None = None
    for affected in record.get("affected") or []:
        package = affected.get("package") or {}
        if not package.get("ecosystem") or osv.package_key(str(package["ecosystem"]), str(package.get("name", ""))) != key:
            continue
        try:
            hit = osv.match(affected, pkg.ecosystem, pkg.version)
        except osv.Unevaluable as exc:
            unevaluable = unevaluable or exc
            continue
        if hit is None:
            continue
        level, score, _source = severity.of_record(record, affected)
        ids = osv.ids_of(record)
        return Finding(id=ids[0], aliases=ids[1:], package=pkg.name, ecosystem=pkg.ecosystem,
                       installed_version=pkg.version, installed=list(pkg.installed), purl=pkg.purl,
                       fixed=list(hit.fixed), last_affected=list(hit.last_affected), severity=level,
                       score=score, summary=_summary(record), records=[ids[0]],
                       purls=pkg.purls)
    if unevaluable is not None:
        raise unevaluable
    return None


def _summary(record: dict[str, Any]) -> str:
    text = str(record.get("summary") or record.get("details") or "").strip()
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= 160 else first[:157] + "..."


def _merge_into(found: list[Finding], new: Finding) -> None:
    for old in found:
        if old.ids & new.ids:
            old.aliases = sorted((old.ids | new.ids) - {old.id}, key=_id_order)
            old.records = sorted(set(old.records) | set(new.records))
            old.fixed = sorted(set(old.fixed) | set(new.fixed))
            old.last_affected = sorted(set(old.last_affected) | set(new.last_affected))
            if severity.rank(new.severity) > severity.rank(old.severity):
                old.severity, old.score = new.severity, new.score
            old.summary = old.summary or new.summary
            return
    found.append(new)


def _id_order(identifier: str) -> tuple[int, str]:
    """CVE ids first in alias lists: that is the name people search for."""
    return (0 if identifier.startswith("CVE-") else 1, identifier)


def counts(findings: list[Finding]) -> dict[str, int]:
    """Findings per severity, highest first, every level present (0 included)."""
    out = {level: 0 for level in reversed(severity.LEVELS)}
    for finding in findings:
        out[finding.severity] += 1
    return out


def at_or_above(findings: list[Finding], level: str) -> list[Finding]:
    return [f for f in findings if severity.rank(f.severity) >= severity.rank(level)]
