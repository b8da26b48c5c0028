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
Written in the form Trivy and Grype match: each product is the pushed image's purl
(``pkg:oci/NAME@sha256%3A...?repository_url=REGISTRY/REPO``) and each subcomponent the
SBOM's purl of the package it speaks for; the readable source (products by variant name,
packages by name) stays in ``images/vex/``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from dlbase import __version__
from dlbase.core import purls
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


def vex_document(statements: list[vex.Statement], target: vex.Target, image_purl: str,
                 components: list[str] | tuple[str, ...] = ()) -> dict[str, Any] | None:
    """One OpenVEX 0.2.0 document of the statements about ``target`` (None: none is), by purl.

    Each statement's products become one: ``image_purl`` (the pushed digest's ``pkg:oci``
    purl), its subcomponents the purls among ``components`` (the SBOM's) that the
    statement's own subcomponents match (:func:`dlbase.core.purls.matches`:
    ``pkg:deb/debian/apt`` becomes ``pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12``);
    a subcomponent that matches none of them (a source package's name) is kept as written,
    which the same rule still applies; a product without subcomponents (the whole image)
    keeps none. Built only from the documents (no clock), so the same
    statements give the same document and a second `push --sign` adds none.
    """
    about = [s for s in statements if s.about(target)]
    if not about:
        return None
    items = []
    for statement in about:
        item = copy.deepcopy(statement.raw)
        kept = [subs for product, subs in statement.products if target.matches(product)]
        written = [] if any(not subs for subs in kept) else list(dict.fromkeys(s for subs in kept for s in subs))
        resolved = list(dict.fromkeys(c for sub in written for c in (_in_sbom(sub, components) or [sub])))
        item["products"] = [{"@id": image_purl, **({"subcomponents": [{"@id": s} for s in resolved]}
                                                   if resolved else {})}]
        item.setdefault("timestamp", statement.timestamp)
        items.append(item)
    newest = max((s.timestamp for s in about if parse_time(s.timestamp)), key=parse_time)
    digest = hashlib.sha256(json.dumps([image_purl, items], sort_keys=True).encode()).hexdigest()
    return {"@context": vex.CONTEXT, "@id": f"https://dlbase.dev/vex/{digest[:32]}",
            "author": "; ".join(sorted({s.author or "unknown" for s in about})),
            "timestamp": newest, "version": 1, "statements": items}


def _in_sbom(sub: str, components: list[str] | tuple[str, ...]) -> list[str]:
    """The SBOM purls that the subcomponent purl ``sub`` speaks for, sorted."""
    return sorted(c for c in components if purls.matches_any(sub, (c,)))
