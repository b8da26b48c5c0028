"""OpenVEX 0.2.0 documents: what the team says about a vulnerability in its images.

A scanner's finding is a fact about versions; whether the vulnerable code can run in the
image is a judgement that only the team can make, and it must be written down and
reviewed, not applied silently. A statement names a vulnerability (id or alias), the
products it is about (a variant name, the matrix repository for every variant,
``REPOSITORY:TAG``, an image digest, or, as scanners write it, the image's purl
``pkg:oci/NAME@sha256%3A...?repository_url=REGISTRY/REPO``) and optionally the packages in
them (``subcomponents``, by purl: ``pkg:pypi/torch``, ``pkg:deb/debian/apt``, or the SBOM's
full ``pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12``), matched by the purl rule of
:func:`dlbase.core.purls.matches`. ``not_affected`` needs a
justification from the spec's list. Only ``not_affected`` and ``fixed`` answer a finding
and move it into the report's VEX section with its reasoning; ``affected`` and
``under_investigation`` say the question is open, so the finding stays open (it still
counts for ``--fail-on`` and a policy's ``fail_on``) with the statement shown beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbase.core import documents, purls
from dlbase.core.documents import Source, expect
from dlbase.core.errors import InvalidInput
from dlbase.define.matrix import Matrix
from dlbase.vuln.db import parse_time
from dlbase.vuln.match import Finding

CONTEXT = "https://openvex.dev/ns/v0.2.0"
#: Where a project keeps its documents, relative to its root.
DEFAULT_DIR = Path("images") / "vex"
STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
#: The statuses that answer a finding (it is no longer open); the others annotate it.
ANSWERING = ("not_affected", "fixed")
JUSTIFICATIONS = ("component_not_present", "vulnerable_code_not_present", "vulnerable_code_not_in_execute_path",
                  "vulnerable_code_cannot_be_controlled_by_adversary", "inline_mitigations_already_exist")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Target:
    """What a scanned image is called, for matching statement products."""

    variant: str | None
    repository: str | None
    refs: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    purls: tuple[str, ...] = ()  # pkg:oci/NAME@DIGEST?repository_url=REGISTRY/REPO, one per registry digest

    def matches(self, product_id: str) -> bool:
        if product_id.startswith("pkg:"):
            return purls.matches_any(product_id, self.purls)
        if product_id in (self.variant, self.repository) or product_id in self.refs:
            return True
        digest = _DIGEST.search(product_id)
        return bool(digest and digest.group(0) in self.digests)


@dataclass
class Statement:
    source: str  # file#index, for the report and for errors
    vulnerability: set[str]
    products: list[tuple[str, tuple[str, ...]]]  # (product @id, subcomponent @ids)
    status: str
    justification: str | None
    impact_statement: str | None
    action_statement: str | None
    timestamp: str | None
    raw: dict[str, Any] = field(default_factory=dict)  # the statement as written, for the VEX attestation
    author: str | None = None  # its document's author

    def about(self, target: Target) -> bool:
        """Whether a product of the statement names ``target`` (any vulnerability, any package)."""
        return any(target.matches(product) for product, _subs in self.products)

    def applies(self, finding: Finding, target: Target) -> bool:
        if not (self.vulnerability & finding.ids):
            return False
        for product, subs in self.products:
            if target.matches(product) and (not subs or any(_names_package(s, finding) for s in subs)):
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "status": self.status, "justification": self.justification,
                "impact_statement": self.impact_statement, "action_statement": self.action_statement,
                "timestamp": self.timestamp}


@dataclass
class Applied:
    """A finding a statement speaks for (moved out of the findings when the status is in ``ANSWERING``)."""

    finding: Finding
    statement: Statement

    def to_dict(self) -> dict[str, Any]:
        return {**self.finding.to_dict(), "vex": self.statement.to_dict()}


@dataclass
class VexResult:
    open: list[Finding] = field(default_factory=list)
    vex: list[Applied] = field(default_factory=list)  # answered: not_affected, fixed
    annotated: list[Applied] = field(default_factory=list)  # affected, under_investigation: still open

    def statement_for(self, finding: Finding) -> Statement | None:
        """The statement beside an open finding (affected / under_investigation), if any."""
        return next((a.statement for a in self.annotated if a.finding is finding), None)


def _names_package(purl: str, finding: Finding) -> bool:
    """Whether a subcomponent purl names the finding's package: one of the SBOM's purls of
    what is installed (each dpkg binary, the Python distribution) or of its Debian source
    package. ``pkg:deb/debian/apt`` names apt at any version; the SBOM's full purl only that
    version on that arch and distro (:func:`dlbase.core.purls.matches`)."""
    return purls.matches_any(purl, finding.purls)


def known_products(matrix: Matrix) -> set[str]:
    """What a product may name besides an image reference or digest: a variant, or the
    matrix repository (every variant)."""
    return {v.name for v in matrix.variants} | {matrix.repository}


def load_dir(folder: Path, *, products: set[str] | None = None) -> list[Statement]:
    """Every statement of every ``*.json`` document in ``folder`` (none when it is absent).
    With ``products`` (the known variant names and repository), a product that is none of
    those and no image reference or digest is an error: a typo would silently apply to nothing."""
    if not folder.is_dir():
        return []
    statements: list[Statement] = []
    for path in sorted(folder.glob("*.json")):
        statements.extend(load_document(path, products=products))
    return statements


def load_document(path: Path, *, products: set[str] | None = None) -> list[Statement]:
    """One document, read by the bounded reader (size, depth, FILE:LINE on a syntax error)."""
    doc = documents.read_json_file(path, "vex", hint="an OpenVEX 0.2.0 document is one JSON object")
    return parse_document(doc, str(path), products=products)


_HINT = "see https://github.com/openvex/spec (v0.2.0) and images/vex/README.md"


def _bad(where: str, message: str) -> InvalidInput:
    return InvalidInput(f"{where}: {message}", hint=_HINT)


def _text_list(node: dict, key: str, where: str) -> list[str]:
    """An optional list of strings (``aliases``); another type is an error, not a crash."""
    value = expect(node, key, list, Source(where, InvalidInput, _HINT), required=False, default=[])
    if not all(isinstance(v, str) for v in value):
        raise _bad(where, f"'{key}' must be a list of strings")
    return value


def parse_document(doc: Any, where: str, *, products: set[str] | None = None) -> list[Statement]:
    """Validate one OpenVEX 0.2.0 document (the fields the spec requires) into statements."""
    if not isinstance(doc, dict):
        raise _bad(where, "not a JSON object")
    if doc.get("@context") != CONTEXT:
        raise _bad(where, f"'@context' must be {CONTEXT!r} (got {doc.get('@context')!r})")
    for key in ("@id", "author", "timestamp"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise _bad(where, f"'{key}' is required (a non-empty string)")
    if parse_time(doc["timestamp"]) is None:
        raise _bad(where, f"'timestamp' {doc['timestamp']!r} is not an RFC 3339 time")
    if not isinstance(doc.get("version"), int) or isinstance(doc.get("version"), bool) or doc["version"] < 1:
        raise _bad(where, "'version' is required (an integer >= 1)")
    raw = doc.get("statements")
    if not isinstance(raw, list) or not raw:
        raise _bad(where, "'statements' must be a non-empty list")
    return [_statement(item, f"{where}#statements[{i}]", doc["timestamp"], products, doc["author"])
            for i, item in enumerate(raw)]


def _statement(item: Any, where: str, doc_time: str, known: set[str] | None, author: str) -> Statement:
    if not isinstance(item, dict):
        raise _bad(where, "a statement must be a JSON object")
    vuln = item.get("vulnerability")
    if not isinstance(vuln, dict) or not isinstance(vuln.get("name"), str) or not vuln["name"].strip():
        raise _bad(where, "'vulnerability.name' is required (a CVE or advisory id)")
    names = {vuln["name"].strip(), *(a.strip() for a in _text_list(vuln, "aliases", where) if a.strip())}
    source = Source(where, InvalidInput, _HINT)
    for key in ("impact_statement", "action_statement", "timestamp", "status_notes"):
        expect(item, key, str, source, required=False)  # printed and compared as text
    status = item.get("status")
    if status not in STATUSES:
        raise _bad(where, f"'status' must be one of {', '.join(STATUSES)} (got {status!r})")
    justification = item.get("justification")
    if status == "not_affected":
        if justification not in JUSTIFICATIONS:
            raise _bad(where, f"status not_affected needs a 'justification', one of {', '.join(JUSTIFICATIONS)} "
                              f"(got {justification!r})")
    elif justification is not None:
        raise _bad(where, f"'justification' belongs to status not_affected only (status is {status})")
    if status == "affected" and not str(item.get("action_statement") or "").strip():
        raise _bad(where, "status affected needs an 'action_statement' (what users should do)")
    raw_products = item.get("products")
    if not isinstance(raw_products, list) or not raw_products:
        raise _bad(where, "'products' must be a non-empty list of {\"@id\": ...}")
    products: list[tuple[str, tuple[str, ...]]] = []
    for j, product in enumerate(raw_products):
        pid = product.get("@id") if isinstance(product, dict) else None
        if not isinstance(pid, str) or not pid.strip():
            raise _bad(where, f"products[{j}] needs an '@id'")
        if known is not None and not _plausible_product(pid, known):
            raise _bad(where, f"products[{j}] '{pid}' is no variant, repository, image reference, digest or pkg:oci purl "
                              f"of this project (variants: {', '.join(sorted(known))})")
        subs = []
        for k, sub in enumerate(expect(product, "subcomponents", list, source, where=f"products[{j}]",
                                       required=False, default=[])):
            sid = sub.get("@id") if isinstance(sub, dict) else None
            parsed = purls.parse(sid) if isinstance(sid, str) else None
            if parsed is None or parsed.type not in ("pypi", "deb"):
                raise _bad(where, f"products[{j}].subcomponents[{k}] needs an '@id' purl "
                                  "(pkg:pypi/NAME or pkg:deb/DISTRO/NAME)")
            subs.append(sid)
        products.append((pid.strip(), tuple(subs)))
    stamp = item.get("timestamp") or doc_time
    return Statement(source=where, vulnerability=names, products=products, status=status,
                     justification=justification, impact_statement=item.get("impact_statement"),
                     action_statement=item.get("action_statement"), timestamp=stamp, raw=item, author=author)


def _plausible_product(pid: str, known: set[str]) -> bool:
    if pid.startswith("pkg:"):
        parsed = purls.parse(pid)
        return parsed is not None and parsed.type == "oci"
    if pid in known or _DIGEST.search(pid):
        return True
    repo, sep, tag = pid.rpartition(":")
    return bool(sep and repo in known and tag and "/" not in tag)


def apply(findings: list[Finding], statements: list[Statement], target: Target) -> VexResult:
    """Sort findings into open / VEX-answered (``ANSWERING``); of several matching statements the newest
    (statement timestamp, else its document's) decides, as OpenVEX specifies."""
    result = VexResult()
    for finding in findings:
        matching = [s for s in statements if s.applies(finding, target)]
        if not matching:
            result.open.append(finding)
            continue
        newest = max(matching, key=lambda s: parse_time(s.timestamp) or parse_time("1970-01-01T00:00:00Z"))
        if newest.status in ANSWERING:
            result.vex.append(Applied(finding, newest))
        else:
            result.open.append(finding)
            result.annotated.append(Applied(finding, newest))
    return result
