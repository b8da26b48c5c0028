"""One severity per advisory: from its CVSS vector when it has one, else the database's label.

The base score is computed by the ``cvss`` library from the vector (the number a record
states is not trusted or needed); a record without a vector falls back to the label its
database gives (GitHub's ``database_specific.severity``, Ubuntu's priority). No data is
UNKNOWN, shown as such: never silently LOW.
"""

from __future__ import annotations

from typing import Any

import cvss

#: Lowest first, as grype orders them: ``--fail-on unknown`` fails on any finding.
LEVELS = ("UNKNOWN", "NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL")

_LABELS = {"MODERATE": "MEDIUM", "NEGLIGIBLE": "LOW", "UNIMPORTANT": "LOW", "IMPORTANT": "HIGH"}


def rank(level: str) -> int:
    return LEVELS.index(level)


def normalise_label(label: str | None) -> str | None:
    """A database's word for a severity -> one of LEVELS (None when it names none)."""
    if not label:
        return None
    word = str(label).strip().upper()
    word = _LABELS.get(word, word)
    return word if word in LEVELS else None


def from_score(score: float) -> str:
    """CVSS v3/v4 qualitative rating of a base score."""
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score > 0.0:
        return "LOW"
    return "NONE"


def score_vector(kind: str, vector: str) -> float | None:
    """Base score of a CVSS vector (None when the library refuses it)."""
    try:
        if kind == "CVSS_V4":
            return float(cvss.CVSS4(vector).base_score)
        if kind == "CVSS_V3":
            return float(cvss.CVSS3(vector).base_score)
        if kind == "CVSS_V2":
            return float(cvss.CVSS2(vector).base_score)
    except (cvss.CVSSError, ValueError, KeyError, TypeError):
        return None
    return None


def of_record(record: dict[str, Any], affected: dict[str, Any] | None = None) -> tuple[str, float | None, str]:
    """(level, base score or None, where it came from) for one advisory.

    Vectors are read from the record's ``severity`` and the affected entry's own; the
    newest CVSS version wins. Then the labels: ``database_specific.severity`` of the record
    or entry, and Ubuntu-style ``{"type": "Ubuntu", "score": "medium"}`` entries."""
    entries = list(record.get("severity") or []) + list((affected or {}).get("severity") or [])
    for kind in ("CVSS_V4", "CVSS_V3", "CVSS_V2"):
        for entry in entries:
            if isinstance(entry, dict) and entry.get("type") == kind and entry.get("score"):
                score = score_vector(kind, str(entry["score"]))
                if score is not None:
                    return from_score(score), score, kind
    for source in (record, affected or {}):
        label = normalise_label((source.get("database_specific") or {}).get("severity")
                                if isinstance(source.get("database_specific"), dict) else None)
        if label:
            return label, None, "database"
    for entry in entries:
        if isinstance(entry, dict):
            label = normalise_label(entry.get("score"))
            if label:
                return label, None, str(entry.get("type") or "database")
    return "UNKNOWN", None, "none"
