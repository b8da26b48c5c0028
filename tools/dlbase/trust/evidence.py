"""What `push --sign` and `verify --attest` attach, and what `trust`/`pull` check.

Attaching: sign the manifest digest (``.sig``), then append the signed statements
(``.att``); each step uploads its blobs before its manifest (see :mod:`store`), and the
cost (seconds, bytes added to the registry) is measured and returned.

Checking: the digest is resolved once by the caller; every signature layer and every
attestation is verified with the given public key(s) and its subject compared with that
digest. One bad piece stops the check with its own error: no signature -> Unsigned,
a signature or envelope that does not verify -> BadSignature, a good one about another
digest -> WrongSubject; then the policy -> PolicyNotMet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from dlbase.core import digest as digests
from dlbase.core import reference
from dlbase.core.errors import BadSignature, DlbaseError, InvalidInput, PolicyNotMet, Unsigned, WrongSubject
from dlbase.registry.client import RegistryClient, api_host
from dlbase.trust import keys, predicates, simplesign, statements, store
from dlbase.trust.policy import Policy, reasons_against


@dataclass(frozen=True)
class Subject:
    """An image in a registry, by manifest digest."""

    host: str
    repository: str
    digest: str

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    @property
    def reference(self) -> str:
        return f"{self.name}@{self.digest}"


def parse_subject(ref: str, client_for: Callable[[str], RegistryClient]) -> tuple[Subject, str | None]:
    """REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:... -> (Subject, the tag or None).

    A tag is resolved here, once; everything after works on the digest.
    """
    parsed = reference.parse(ref, where="REF").normalized()
    host = api_host(parsed)
    if parsed.digest:
        if not digests.is_sha256(parsed.digest):
            raise InvalidInput(f"REF: {ref!r} names a {parsed.digest.partition(':')[0]} digest; "
                               "signatures are made over sha256 manifest digests",
                               hint="give REGISTRY/REPO@sha256:... or REGISTRY/REPO:TAG")
        return Subject(host, parsed.repository, parsed.digest), parsed.tag
    tag = parsed.tag or "latest"
    digest = client_for(host).manifest_digest(parsed.repository, tag)
    return Subject(host, parsed.repository, digest), tag


# --------------------------------------------------------------------------- attaching


def attach(client: RegistryClient, subject: Subject, pair: keys.KeyPair, *, sign: bool,
           attestations: list[tuple[str, dict]], on_step: Callable[[str], None] = lambda _s: None) -> dict:
    """Sign ``subject`` (when ``sign``) and append one attestation per (type, predicate)."""
    t0 = time.monotonic()
    st = store.ArtifactStore(client, subject.repository, on_step=on_step)
    result: dict = {"signature": None, "attestations": []}
    if sign:
        existing = _signed_by(st.signatures(subject.digest), pair, subject)
        if existing:
            on_step(f"{subject.reference} is already signed with this key")
            result["signature"] = {"tag": store.sig_tag(subject.digest), "layer": existing, "existing": True}
        else:
            on_step(f"signing {subject.reference}")
            blob, annotations = simplesign.sign(pair, simplesign.payload(subject.name, subject.digest))
            layer = store.Layer(blob, simplesign.MEDIA_TYPE, annotations)
            st.append(store.sig_tag(subject.digest), [layer])
            result["signature"] = {"tag": store.sig_tag(subject.digest), "layer": layer.digest, "existing": False}
    layers = []
    present = _statements_by(st.attestations(subject.digest), pair, subject) if attestations else set()
    for ptype, predicate in attestations:
        stmt = statements.statement(subject.name, subject.digest, ptype, predicate)
        if statements.payload_bytes(stmt) in present:  # the same statement, signed by this key already
            on_step(f"{ptype} is already attached")
            result["attestations"].append({"predicateType": ptype, "layer": None, "bytes": 0, "existing": True})
            continue
        env = statements.envelope(pair, stmt)
        layers.append(store.Layer(env, statements.MEDIA_TYPE,
                                  {store.PREDICATE_ANNOTATION: ptype, simplesign.SIGNATURE_ANNOTATION: ""}))
        result["attestations"].append({"predicateType": ptype, "layer": layers[-1].digest, "bytes": len(env)})
    if layers:
        on_step(f"attaching {len(layers)} attestation(s) to {subject.reference}")
        st.append(store.att_tag(subject.digest), layers, entry_tags=True)
    result["seconds"] = round(time.monotonic() - t0, 3)
    result["registry_bytes"] = st.bytes_written
    result["key"] = keys.fingerprint(pair.public)
    return result


def _signed_by(layers: list[store.Layer], pair: keys.KeyPair, subject: Subject) -> str | None:
    """The digest of a signature layer this key made for this digest, if there is one."""
    for layer in layers:
        try:
            simplesign.verify(pair.public, layer.blob, layer.annotations, subject.digest, layer.where)
            return layer.digest
        except (BadSignature, WrongSubject):
            continue
    return None


def _statements_by(layers: list[store.Layer], pair: keys.KeyPair, subject: Subject) -> set[bytes]:
    """Payloads of the attestations this key already signed for this digest: re-pushing
    with --sign then adds no duplicate SBOM or provenance."""
    found = set()
    for layer in layers:
        try:
            statements.open_envelope(pair.public, layer.blob, subject.digest, layer.where)
        except (BadSignature, WrongSubject):
            continue
        found.add(statements.envelope_payload(layer.blob))
    return found


# --------------------------------------------------------------------------- checking


@dataclass
class Evidence:
    subject: Subject
    tag: str | None
    signature: dict = field(default_factory=dict)
    statements: list[dict] = field(default_factory=list)

    def of_type(self, ptype: str) -> list[dict]:
        return [s["predicate"] for s in self.statements if s.get("predicateType") == ptype]

    def verifications(self) -> list[dict]:
        """dlbase's view of every verification, in either predicate type that carries one."""
        return [predicates.verification_view(s["predicateType"], s["predicate"]) for s in self.statements
                if s.get("predicateType") in predicates.VERIFICATION_TYPES]

    def unknown_types(self) -> list[str]:
        """Predicate types dlbase does not read (another tool's attestations): listed, never an error."""
        return sorted({s["predicateType"] for s in self.statements} - set(predicates.KNOWN_TYPES))


def _verify_any(publics: list, check: Callable[[object], dict]) -> dict:
    """The first key that verifies wins; otherwise the most telling error (WrongSubject
    says more than BadSignature: the signature itself was good)."""
    errors: list[DlbaseError] = []
    for public in publics:
        try:
            return check(public)
        except (BadSignature, WrongSubject) as exc:
            errors.append(exc)
    wrong = [e for e in errors if isinstance(e, WrongSubject)]
    raise (wrong or errors)[0]


def check(client: RegistryClient, subject: Subject, publics: list, *, tag: str | None = None) -> Evidence:
    """Every signature and attestation of ``subject``, verified; raises on the first bad one."""
    st = store.ArtifactStore(client, subject.repository)
    sigs = st.signatures(subject.digest)
    if not sigs:
        raise Unsigned(f"{subject.reference} is not signed: the registry has no {store.sig_tag(subject.digest)}",
                       hint="ask the publisher to push with `dlbase push --sign`; do not use an unsigned image")
    evidence = Evidence(subject, tag)
    good = None
    errors: list[DlbaseError] = []
    for layer in sigs:
        try:
            good = _verify_any(publics, lambda pub, la=layer: simplesign.verify(pub, la.blob, la.annotations,
                                                                                subject.digest, la.where))
            break
        except (BadSignature, WrongSubject) as exc:
            errors.append(exc)
    if good is None:
        wrong = [e for e in errors if isinstance(e, WrongSubject)]
        raise (wrong or errors)[0]
    evidence.signature = {"identity": good["critical"]["identity"]["docker-reference"], "layers": len(sigs)}
    for layer in st.attestations(subject.digest):
        stmt = _verify_any(publics, lambda pub, la=layer: statements.open_envelope(pub, la.blob, subject.digest,
                                                                                  la.where))
        declared = layer.annotations.get(store.PREDICATE_ANNOTATION)
        if declared and declared != stmt["predicateType"]:
            raise BadSignature(f"{layer.where}: annotated {declared} but the signed statement is "
                               f"{stmt['predicateType']}")
        evidence.statements.append(stmt)
    return evidence


def enforce(evidence: Evidence, policy: Policy) -> list[dict]:
    """Each verification with why it does or does not meet the policy; PolicyNotMet if none does."""
    rows = []
    for pred in evidence.verifications():
        rows.append({"predicate": pred, "unmet": reasons_against(policy, pred)})
    if policy.active and not any(not r["unmet"] for r in rows):
        found = "; ".join(f"{(r['predicate'].get('host') or {}).get('label') or 'unlabelled'}: {', '.join(r['unmet'])}"
                          for r in rows) or "no verification attestation at all"
        raise PolicyNotMet(f"{evidence.subject.reference}: no verification meets the policy "
                           f"({policy.describe()}); found: {found}",
                           hint="run `dlbase verify REF@DIGEST --attest --require-gpu` on a GPU host, or relax the policy")
    return rows
