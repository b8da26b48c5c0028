"""What `push --sign` and `verify --attest` attach, and what `trust`/`pull` check.

Attaching: sign the manifest digest (``.sig``; one signature per pushed tag, the tag in
the signed payload), then append the signed statements (``.att``); each step uploads its
blobs before its manifest (see :mod:`store`), and the cost (seconds, bytes added to the
registry) is measured and returned.

Checking, against a :class:`~dlbase.trust.policy.TrustPolicy`: the digest is resolved
once by the caller; every signature and attestation, in either format (a legacy
``.sig``/``.att`` layer, or a Sigstore bundle found by :mod:`referrers`, cosign 3's
default), is a :class:`Candidate` matched to the policy key that verifies it; from there
on both formats go through the same checks. A layer no policy key verifies is listed as ignored (with the key
fingerprint it names) and never fails the check, unless it names a key of the policy:
then it was changed after signing (BadSignature). Then: no signature at all -> Unsigned;
none by a publisher key -> BadSignature; a good one about another digest -> WrongSubject;
good ones only for another repository, or none naming the tag asked for ->
WrongIdentity. What the verified evidence is worth against the policy's GPU, scan and
rebuilt-identical requirements is :mod:`dlbase.trust.verdict`'s.

What each role may attest (:data:`ROLE_TYPES`): a publisher anything; a verifier
verification results; a scanner vulnerability scans; a rebuilder rebuilt-identical
statements. A statement of another type by a verifier, scanner or rebuilder key is listed
as ignored, like one by a key the policy does not name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from dlbase.core import digest as digests
from dlbase.core import reference
from dlbase.core.errors import BadSignature, InvalidInput, Unsigned, WrongIdentity, WrongSubject
from dlbase.registry.client import RegistryClient, api_host
from dlbase.trust import bundle, keys, predicates, referrers, scans, simplesign, statements, store
from dlbase.trust.policy import PUBLISHER, REBUILDER, SCANNER, VERIFIER, TrustedKey, TrustPolicy
from dlbase.vuln.attestation import VULN_TYPE

#: What a key of each role other than publisher may attest, and how it is called.
ROLE_TYPES = {VERIFIER: (predicates.VERIFICATION_TYPES, "verification results"),
              SCANNER: ((VULN_TYPE,), "vulnerability scans"),
              REBUILDER: ((predicates.REBUILT_TYPE,), "rebuilt-identical statements")}


def may_attest(key: TrustedKey, predicate_type: str) -> bool:
    return key.has(PUBLISHER) or any(key.has(role) and predicate_type in types
                                     for role, (types, _what) in ROLE_TYPES.items())


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


def repository_of(signed: str) -> str:
    """API-HOST/REPO of a signed docker-reference, normalised as :func:`parse_subject`
    normalises the checked reference (Docker Hub's aliases, ``library/``), so the two
    compare; a tag or digest on it is dropped, and text that is no reference is itself."""
    try:
        parsed = reference.parse(signed, where="docker-reference").normalized()
    except InvalidInput:
        return signed
    return f"{api_host(parsed)}/{parsed.repository}"


# --------------------------------------------------------------------------- attaching


def attach(client: RegistryClient, subject: Subject, pair: keys.KeyPair, *, sign: bool,
           attestations: list[tuple[str, dict]], tags: tuple[str, ...] = (),
           on_step: Callable[[str], None] = lambda _s: None) -> dict:
    """Sign ``subject`` (when ``sign``: one signature naming each of ``tags``, or one naming
    none) and append one attestation per (type, predicate)."""
    t0 = time.monotonic()
    st = store.ArtifactStore(client, subject.repository, on_step=on_step)
    result: dict = {"signature": None, "attestations": []}
    signer = {simplesign.SIGNER_ANNOTATION: keys.fingerprint(pair.public)}
    if sign:
        existing = _signed_tags(st.signatures(subject.digest), pair, subject)
        new_layers, made = [], []
        for tag in tags or (None,):
            if tag in existing:
                on_step(f"{subject.reference} is already signed with this key" + (f" for tag {tag}" if tag else ""))
                made.append(existing[tag])
                continue
            on_step(f"signing {subject.reference}" + (f" for tag {tag}" if tag else ""))
            optional = {simplesign.TAG_ANNOTATION: tag} if tag else None
            blob, annotations = simplesign.sign(pair, simplesign.payload(subject.name, subject.digest, optional))
            new_layers.append(store.Layer(blob, simplesign.MEDIA_TYPE, annotations))
            made.append(new_layers[-1].digest)
        if new_layers:
            st.append(store.sig_tag(subject.digest), new_layers)
        result["signature"] = {"tag": store.sig_tag(subject.digest), "layer": made[0], "layers": made,
                               "signed_tags": list(tags), "existing": not new_layers}
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
                                  {store.PREDICATE_ANNOTATION: ptype, simplesign.SIGNATURE_ANNOTATION: "", **signer}))
        result["attestations"].append({"predicateType": ptype, "layer": layers[-1].digest, "bytes": len(env)})
    if layers:
        on_step(f"attaching {len(layers)} attestation(s) to {subject.reference}")
        st.append(store.att_tag(subject.digest), layers, entry_tags=True)
    result["seconds"] = round(time.monotonic() - t0, 3)
    result["registry_bytes"] = st.bytes_written
    result["key"] = keys.fingerprint(pair.public)
    return result


def _signed_tags(layers: list[store.Layer], pair: keys.KeyPair, subject: Subject) -> dict[str | None, str]:
    """{tag (None: no tag) -> layer digest} of the signatures this key already made for
    this digest and repository: signing again adds none twice."""
    found: dict[str | None, str] = {}
    for layer in layers:
        try:
            body = simplesign.open_signed(pair.public, layer.blob, layer.annotations, subject.digest, layer.where)
        except (BadSignature, WrongSubject):
            continue
        if body is None:
            continue
        if repository_of(simplesign.signed_reference(body)) == repository_of(subject.name):
            found.setdefault(simplesign.signed_tag(body), layer.digest)
    return found


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
    statements: list[dict] = field(default_factory=list)  # {"statement": ..., "signer": TrustedKey}
    ignored: list[dict] = field(default_factory=list)

    def signed(self, ptype: str, role: str | None = PUBLISHER) -> list[dict]:
        """The {statement, signer} of one predicate type, from keys holding ``role`` (None: any)."""
        return [s for s in self.statements
                if s["statement"].get("predicateType") == ptype and (role is None or s["signer"].has(role))]

    def verifications(self) -> list[dict]:
        """Every verification, in either predicate type that carries one, as
        {"predicate": dlbase's view of it, "signer": the key that verified it}."""
        return [{"predicate": predicates.verification_view(s["statement"]["predicateType"],
                                                           s["statement"]["predicate"]),
                 "signer": s["signer"]}
                for s in self.statements if s["statement"].get("predicateType") in predicates.VERIFICATION_TYPES]

    def scans(self) -> list[dict]:
        """Every scan by a key that may attest one, as {"predicate": :func:`scans.view`, "signer"}."""
        return [{"predicate": scans.view(s["statement"]["predicate"]), "signer": s["signer"]}
                for s in self.signed(VULN_TYPE, role=None)]

    def rebuilds(self) -> list[dict]:
        """Every rebuilt-identical statement by a key that may make one, as
        {"predicate": :func:`predicates.rebuilt_view`, "signer"}."""
        return [{"predicate": predicates.rebuilt_view(s["statement"]["predicate"]), "signer": s["signer"]}
                for s in self.signed(predicates.REBUILT_TYPE, role=None)]

    def unknown_types(self) -> list[str]:
        """Predicate types dlbase does not read (another tool's attestations): listed, never an error."""
        return sorted({s["statement"]["predicateType"] for s in self.statements} - set(predicates.KNOWN_TYPES))


@dataclass(frozen=True)
class Candidate:
    """One signature or attestation to weigh, in either format: where it is, the key it
    claims (unsigned: a hint), the predicate type it declares, and ``opens(public)``,
    what it says when that key signed it (None when it did not)."""

    where: str
    fmt: str  # LEGACY (a .sig/.att layer) or BUNDLE (a Sigstore bundle referrer)
    claimed: str | None
    declared: str | None
    opens: Callable[[object], dict | None]

    @property
    def only_claimed(self) -> bool:
        """A bundle is tried with the key its hint names only (cosign's key id is the key's
        digest, so a hint is never ambiguous); a legacy layer with every key."""
        return self.fmt == BUNDLE and self.claimed is not None


LEGACY, BUNDLE = "legacy", "bundle"


def _legacy(layers: list[store.Layer], subject: Subject, kind: str) -> list[Candidate]:
    if kind == bundle.SIGNATURE:
        return [Candidate(la.where, LEGACY, la.annotations.get(simplesign.SIGNER_ANNOTATION), None,
                          lambda pub, la=la: simplesign.open_signed(pub, la.blob, la.annotations, subject.digest,
                                                                    la.where))
                for la in layers]
    return [Candidate(la.where, LEGACY, la.annotations.get(simplesign.SIGNER_ANNOTATION),
                      la.annotations.get(store.PREDICATE_ANNOTATION),
                      lambda pub, la=la: statements.open_if_signed(pub, la.blob, subject.digest, la.where))
            for la in layers]


def _bundles(found: referrers.Found, subject: Subject, ignored: list[dict]) -> dict[str, list[Candidate]]:
    """The bundles found, parsed, as signature and attestation candidates; an unreadable
    one is ignored (it proves nothing, and an image needs a good signature anyway)."""
    out: dict[str, list[Candidate]] = {bundle.SIGNATURE: [], bundle.ATTESTATION: []}
    for layer in found.layers:
        try:
            parsed = bundle.parse(layer.blob, layer.where)
        except BadSignature as exc:
            ignored.append({"kind": "referrer", "where": layer.where, "fingerprint": None, "predicateType": None,
                            "why": f"not a readable Sigstore bundle: {exc.message}"})
            continue
        out[parsed.kind].append(Candidate(
            layer.where, BUNDLE, parsed.hint, layer.annotations.get(bundle.PREDICATE_ANNOTATION) or None,
            lambda pub, b=parsed: bundle.open_signed(pub, b, subject.digest)))
    return out


def _signer(policy: TrustPolicy, candidate: Candidate) -> tuple[TrustedKey, dict] | None:
    """The key of the policy that verifies a candidate, publishers tried first (a bundle:
    only the key its hint names), with what it says. The signature is verified once, by
    the key that made it: never again after it is found."""
    ordered = policy.of_role(PUBLISHER) + [k for k in policy.keys if not k.has(PUBLISHER)]
    if candidate.only_claimed:
        ordered = [k for k in ordered if k.fingerprint == candidate.claimed]
    for key in ordered:
        opened = candidate.opens(key.public)
        if opened is not None:
            return key, opened
    return None


def _not_ours(policy: TrustPolicy, candidate: Candidate, kind: str, what: str, ignored: list[dict]) -> None:
    """A candidate no key of the policy verifies: tampering if it names one of them, else ignored."""
    named = policy.by_fingerprint(candidate.claimed)
    if named is not None:
        raise BadSignature(f"{candidate.where}: the {what} does not verify with the key given that it names "
                           f"({named.describe()}): it was changed after signing",
                           hint="do not use this image; tell its publisher")
    ignored.append({"kind": kind, "where": candidate.where, "fingerprint": candidate.claimed,
                    "predicateType": candidate.declared if kind == "attestation" else None,
                    "why": "signed by a key the policy does not name"
                           + ("" if candidate.claimed else f" (the {'bundle' if candidate.fmt == BUNDLE else 'layer'} "
                                                           "names no key fingerprint)")})


def _signatures(sigs: list[Candidate], subject: Subject, policy: TrustPolicy, ignored: list[dict]) -> list[dict]:
    """The publisher signatures of this digest among its ``.sig`` layers and signature
    bundles: [{body, signer, format}]."""
    if not sigs:
        raise Unsigned(f"{subject.reference} is not signed: the registry has no {store.sig_tag(subject.digest)} "
                       "and no Sigstore bundle signature among its referrers",
                       hint="ask the publisher to push with `dlbase push --sign`; do not use an unsigned image")
    valid = []
    for candidate in sigs:
        found = _signer(policy, candidate)
        if found is None:
            _not_ours(policy, candidate, "signature", "image signature", ignored)
            continue
        key, body = found
        if not key.has(PUBLISHER):
            ignored.append({"kind": "signature", "where": candidate.where, "fingerprint": key.fingerprint,
                            "predicateType": None,
                            "why": f"signed by {key.describe()}: only publisher keys sign images"})
            continue
        valid.append({"body": body, "signer": key, "format": candidate.fmt})
    if not valid:
        named = sorted({i["fingerprint"] or "an unnamed key" for i in ignored if i["kind"] == "signature"})
        raise BadSignature(f"{subject.reference}: no image signature verifies with a publisher key given "
                           f"({len(sigs)} signature(s), by {', '.join(named)})",
                           hint="the image was signed with another key (check you have the publisher's current "
                                "public key), or its signature was changed; do not use it")
    return valid


def _for_identity(valid: list[dict], subject: Subject, tag: str | None, policy: TrustPolicy) -> dict:
    """The signature that names this repository (or an allowed mirror) and, checking by
    tag, that tag; WrongIdentity when there is none."""
    allowed = {repository_of(subject.name), *(repository_of(r) for r in policy.repositories)}
    here = [v for v in valid if repository_of(simplesign.signed_reference(v["body"])) in allowed or _digest_only(v)]
    if not here:
        made_for = sorted({simplesign.signed_reference(v["body"]) for v in valid})
        raise WrongIdentity(f"{subject.reference} is signed for {', '.join(made_for)}, not for {subject.name}: "
                            "the image and its signature were copied from another repository",
                            hint="pull it from the repository it was published to; if this is a mirror you "
                                 "trust, list the origin under require.repositories in a --policy file")
    if tag is None or not policy.signed_tag:
        return here[0]
    named = [v for v in here if simplesign.signed_tag(v["body"]) == tag]
    if not named:
        tags = sorted({t for t in (simplesign.signed_tag(v["body"]) for v in here) if t})
        raise WrongIdentity(f"{subject.name}:{tag} resolves to {subject.digest}, but no publisher signature of "
                            f"it names tag {tag} (signed for: {', '.join(tags) or 'no tag at all'})",
                            hint="the registry may serve an older or another image under this tag; check by "
                                 "the digest you expect (REF@sha256:...), or, for an image signed without tags, "
                                 "set require.signed_tag: false in a --policy file knowingly")
    return named[0]


def _digest_only(valid: dict) -> bool:
    """A bundle signature that names no repository (cosign 3's ``sign`` names only the
    digest): it vouches for the digest wherever it is stored, as cosign 3 itself reads
    it, so it cannot show that the image was copied from another repository."""
    return valid["format"] == BUNDLE and not simplesign.signed_reference(valid["body"])


def check(client: RegistryClient, subject: Subject, policy: TrustPolicy, *, tag: str | None = None) -> Evidence:
    """Every signature and attestation of ``subject``, matched to the policy's keys."""
    st = store.ArtifactStore(client, subject.repository)
    evidence = Evidence(subject, tag)
    found = referrers.find(client, subject.repository, subject.digest)
    evidence.ignored += found.ignored
    bundles = _bundles(found, subject, evidence.ignored)
    sigs = _legacy(st.signatures(subject.digest), subject, bundle.SIGNATURE) + bundles[bundle.SIGNATURE]
    valid = _signatures(sigs, subject, policy, evidence.ignored)
    chosen = _for_identity(valid, subject, tag, policy)
    evidence.signature = {"identity": simplesign.signed_reference(chosen["body"]) or None,
                          "tag": simplesign.signed_tag(chosen["body"]), "layers": len(sigs),
                          "key": chosen["signer"].fingerprint, "key_label": chosen["signer"].label,
                          "format": chosen["format"], "formats": sorted({v["format"] for v in valid})}
    atts = _legacy(st.attestations(subject.digest), subject, bundle.ATTESTATION) + bundles[bundle.ATTESTATION]
    for candidate in atts:
        opened = _signer(policy, candidate)
        if opened is None:
            _not_ours(policy, candidate, "attestation", "attestation's signature", evidence.ignored)
            continue
        key, stmt = opened
        if candidate.declared and candidate.declared != stmt["predicateType"]:
            raise BadSignature(f"{candidate.where}: annotated {candidate.declared} but the signed statement is "
                               f"{stmt['predicateType']}")
        if not may_attest(key, stmt["predicateType"]):
            allowed = " and ".join(f"{role}s attest {what} only" for role, (_t, what) in ROLE_TYPES.items()
                                   if key.has(role))
            evidence.ignored.append({"kind": "attestation", "where": candidate.where, "fingerprint": key.fingerprint,
                                     "predicateType": stmt["predicateType"],
                                     "why": f"signed by {key.describe()}: {allowed}"})
            continue
        evidence.statements.append({"statement": stmt, "signer": key})
    return evidence
