"""Reading the scan and VEX attestations an image carries, for `dlbase trust`.

A scan is cosign's vuln predicate; dlbase's own (``vuln.attestation.vuln_predicate``)
carries the scan document in ``scanner.result``: when it ran, the database's newest
record, counts by severity with and without VEX, the open findings. Another scanner's
vuln predicate (Trivy's cosign-vuln) is read for its time and database only: its counts
are unknown to dlbase, so it never shows "no finding at or above" a severity.
"""

from __future__ import annotations

from datetime import datetime, timezone

from dlbase.vuln.db import parse_time


def view(predicate: dict) -> dict:
    """The facts of one vuln predicate that trust shows and a policy checks."""
    scanner = predicate.get("scanner") if isinstance(predicate.get("scanner"), dict) else {}
    result = scanner.get("result") if isinstance(scanner.get("result"), dict) else {}
    metadata = predicate.get("metadata") if isinstance(predicate.get("metadata"), dict) else {}
    db = scanner.get("db") if isinstance(scanner.get("db"), dict) else {}
    counts = result.get("counts")
    findings = result.get("findings") if isinstance(result.get("findings"), list) else []
    return {"when": metadata.get("scanFinishedOn") or result.get("scanned_at") or metadata.get("scanStartedOn"),
            "scanner": scanner.get("uri"),
            "database": db.get("version"),
            "counts": counts if isinstance(counts, dict) else None,
            "counts_without_vex": result.get("counts_without_vex"),
            "vex_applied": len(result["vex"]) if isinstance(result.get("vex"), list) else None,
            "findings": [{"id": f.get("id"), "package": f.get("package"), "severity": f.get("severity")}
                         for f in findings if isinstance(f, dict)],
            "not_covered": result.get("not_covered") or [],
            # records the scanner could not evaluate: a policy's fail_on is not met by omission
            "could_not_evaluate": len(result["could_not_evaluate"])
            if isinstance(result.get("could_not_evaluate"), list) else 0}


def newest(rows: list[dict]) -> dict | None:
    """The row (each with a ``predicate`` view) of the newest scan; undated ones count as oldest."""
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return max(rows, key=lambda r: parse_time(r["predicate"].get("when")) or oldest, default=None)
