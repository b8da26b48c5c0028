"""A scan as cosign's vulnerability-attestation predicate, ready to be signed.

cosign defines the predicate (``https://cosign.sigstore.dev/attestation/vuln/v1``):
``invocation``, ``scanner`` (uri, version, the database it used, and the result) and
``metadata`` (scan start and end). dlbase's result is the scan document itself (findings,
VEX-answered findings, counts with and without VEX, the database's newest record date),
so a consumer reading the attestation sees what `dlbase scan --json` showed. `cosign
attest --type vuln --predicate FILE` attaches it as it is; dlbase's own push can sign
the same dict.

The VEX that applies to an image travels beside it as an OpenVEX 0.2.0 attestation
(predicate type ``https://openvex.dev/ns/v0.2.0``, the document's own ``@context``), so
a scanner that reads VEX from the registry sees what the team said, not only dlbase.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from dlbase import __version__
from dlbase.vuln import vex
from dlbase.vuln.db import parse_time
from dlbase.vuln.report import ScanReport

VULN_TYPE = "https://cosign.sigstore.dev/attestation/vuln/v1"
OPENVEX_TYPE = vex.CONTEXT
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


def vex_document(statements: list[vex.Statement], target: vex.Target, subject: str) -> dict[str, Any] | None:
    """One OpenVEX 0.2.0 document of the statements about ``target`` (None: none is).

    Each statement keeps the products of it that name this image and also names the image
    itself (``subject``, REGISTRY/REPO@sha256:...) with the same subcomponents, so a reader
    that matches products by digest finds it. Built only from the documents (no clock), so
    the same statements give the same document and a second `push --sign` adds none.
    """
    about = [s for s in statements if s.about(target)]
    if not about:
        return None
    items = []
    for statement in about:
        item = copy.deepcopy(statement.raw)
        kept = [p for p in item.get("products") or [] if isinstance(p, dict) and target.matches(str(p.get("@id")))]
        subs = list({json.dumps(sub, sort_keys=True): sub for p in kept for sub in p.get("subcomponents") or []}.values())
        item["products"] = kept + [{"@id": subject, **({"subcomponents": subs} if subs else {})}]
        item.setdefault("timestamp", statement.timestamp)
        items.append(item)
    newest = max((s.timestamp for s in about if parse_time(s.timestamp)), key=parse_time)
    digest = hashlib.sha256(json.dumps([subject, items], sort_keys=True).encode()).hexdigest()
    return {"@context": vex.CONTEXT, "@id": f"https://dlbase.dev/vex/{digest[:32]}",
            "author": "; ".join(sorted({s.author or "unknown" for s in about})),
            "timestamp": newest, "version": 1, "statements": items}
