"""One scan's result: findings (open, VEX-answered), counts, and what limits the answer.

A scan is only as good as its inputs, so the report carries them beside the findings:
the database's newest record date and age, the ecosystems of the image that the database
has no records for (their packages were not checked: never a silent zero), and where
the image's Python distributions disagree with the lock it claims to be built from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dlbase.define.lock import Lock
from dlbase.vuln import match, vex
from dlbase.vuln.db import Database
from dlbase.image.inventory import Inventory, LockDisagreement, against_lock


@dataclass
class ScanReport:
    subject: str
    variant: str | None
    os: str | None
    os_ecosystem: str | None
    database: Database
    max_age_days: float
    packages: dict[str, int]
    result: vex.VexResult
    not_covered: list[str] = field(default_factory=list)
    lock_disagreements: list[LockDisagreement] = field(default_factory=list)
    not_in_lock: list[str] = field(default_factory=list)
    lock_only: bool = False
    #: records about installed packages the scanner could not evaluate (never "not affected")
    unevaluated: list[match.Unevaluated] = field(default_factory=list)
    lock_checked: bool = False  # the image named a variant of this project, whose lock was compared
    scanned_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def age_days(self) -> float | None:
        return self.database.age_days(self.scanned_at)

    @property
    def stale(self) -> bool:
        age = self.age_days
        return age is None or age > self.max_age_days

    @property
    def counts(self) -> dict[str, int]:
        return match.counts(self.result.open)

    @property
    def counts_without_vex(self) -> dict[str, int]:
        return match.counts(self.result.open + [a.finding for a in self.result.vex])

    def to_dict(self) -> dict[str, Any]:
        db = self.database
        return {
            "subject": self.subject, "variant": self.variant, "os": self.os, "os_ecosystem": self.os_ecosystem,
            "scanned_at": self.scanned_at.isoformat(timespec="seconds"), "lock_only": self.lock_only,
            "database": {"path": str(db.path), "records": db.records, "withdrawn": db.withdrawn,
                         "ecosystems": dict(sorted(db.ecosystems.items())),
                         "newest_modified": db.newest_modified.isoformat() if db.newest_modified else None,
                         "age_days": None if self.age_days is None else round(self.age_days, 2),
                         "max_age_days": self.max_age_days, "stale": self.stale},
            "packages": self.packages, "not_covered": self.not_covered,
            "lock": {"checked": self.lock_checked,
                     "agrees": None if not self.lock_checked else not self.lock_disagreements,
                     "disagreements": [d.to_dict() for d in self.lock_disagreements],
                     "not_in_lock": self.not_in_lock},
            "findings": [self._open_dict(f) for f in self.result.open],
            "vex": [a.to_dict() for a in self.result.vex],
            "counts": self.counts, "counts_without_vex": self.counts_without_vex,
            "could_not_evaluate": [u.to_dict() for u in self.unevaluated],
        }


    def _open_dict(self, finding: match.Finding) -> dict[str, Any]:
        """An open finding, with the VEX statement beside it (affected / under_investigation)
        when one speaks for it: the reader sees the question is being worked on."""
        statement = self.result.statement_for(finding)
        return {**finding.to_dict(), **({"vex": statement.to_dict()} if statement is not None else {})}


def build(subject: str, inventory: Inventory, database: Database, *, statements: list[vex.Statement],
          target: vex.Target, lock: Lock | None = None, max_age_days: float = 7.0,
          lock_only: bool = False) -> ScanReport:
    packages = inventory.packages()
    ecosystems = sorted({p.ecosystem for p in packages})
    findings, unevaluated = match.find_all(packages, database)
    bad, extras = against_lock(inventory.python, lock) if lock is not None and not lock_only else ([], [])
    per_ecosystem = {eco: sum(1 for p in packages if p.ecosystem == eco) for eco in ecosystems}
    not_covered = [eco for eco in ecosystems if not database.covers(eco)]
    if inventory.deb and not inventory.os_ecosystem:
        not_covered.append(f"dpkg packages of {inventory.os_pretty or 'an unknown OS'} (no OSV ecosystem)")
    return ScanReport(subject=subject, variant=target.variant, os=inventory.os_pretty,
                      os_ecosystem=inventory.os_ecosystem, database=database, max_age_days=max_age_days,
                      packages=per_ecosystem, result=vex.apply(findings, statements, target),
                      not_covered=not_covered, lock_disagreements=bad, not_in_lock=extras, lock_only=lock_only,
                      unevaluated=unevaluated,
                      lock_checked=lock is not None and not lock_only)
