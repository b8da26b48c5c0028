"""A scan as cosign's vulnerability-attestation predicate, ready to be signed.

cosign defines the predicate (``https://cosign.sigstore.dev/attestation/vuln/v1``):
``invocation``, ``scanner`` (uri, version, the database it used, and the result) and
``metadata`` (scan start and end). dlbase's result is the scan document itself (findings,
VEX-answered findings, counts with and without VEX, the database's newest record date),
so a consumer reading the attestation sees what `dlbase scan --json` showed. `cosign
attest --type vuln --predicate FILE` attaches it as it is; dlbase's own push can sign
the same dict.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from dlbase import __version__
from dlbase.vuln.report import ScanReport

VULN_TYPE = "https://cosign.sigstore.dev/attestation/vuln/v1"
SCANNER_URI = "pkg:pypi/dlbase"


def vuln_predicate(report: ScanReport, *, finished: datetime | None = None,
                   parameters: list[str] | None = None) -> dict[str, Any]:
    body = report.to_dict()
    db = body["database"]
    end = (finished or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return {
        "invocation": {"parameters": list(parameters or []), "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": f"{SCANNER_URI}@{__version__}",
            "version": __version__,
            "db": {"uri": f"file://{db['path']}", "version": db["newest_modified"] or "unknown"},
            "result": body,
        },
        "metadata": {"scanStartedOn": body["scanned_at"], "scanFinishedOn": end},
    }
