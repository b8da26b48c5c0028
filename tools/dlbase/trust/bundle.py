"""Sigstore bundles (v0.1-v0.3), as cosign 3 stores signatures and attestations, checked with a key.

A bundle is one JSON document: ``verificationMaterial`` (for a key-based signature only
``publicKey.hint``, the key's id) and one content, either

- ``dsseEnvelope``: an in-toto statement in a DSSE envelope, its signature over the PAE
  (what :mod:`statements` checks for the legacy ``.att`` layers). cosign 3's ``sign``
  writes a Statement v1 of predicate type :data:`SIGN_PREDICATE` whose subject is the
  image's digest (no name) with the ``-a key=value`` annotations on it; its ``attest``
  writes the statement it was given (v0.1, subject named);
- ``messageSignature``: a signature over the artifact, with the artifact's digest beside
  it. For an image the artifact is the manifest, so the signature is checked against the
  manifest digest itself (ECDSA over the prehashed SHA-256), as sigstore-go checks it
  when cosign hands it the image digest.

Key-based verification needs no transparency log and no timestamp (cosign 3 skips both
when given ``--key``), so tlog entries and timestamps are not read. The hint is cosign's
key id, the SHA-256 of the public key's DER (base64): :func:`hinted_fingerprint` turns it
into dlbase's fingerprint, so a bundle is tried only with the key it names (and one that
names a policy key but fails under it is tampering, as for a legacy layer).

What a verified bundle says is returned in the legacy shapes (a simple-signing body for a
signature, the statement for an attestation), so :mod:`evidence` and :mod:`verdict`
judge both formats with the same rules. Parsing is by hand with the project's bounded
reader: see docs/trust-operators.md for why sigstore-models and sigstore-protobuf-specs
were not taken.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from dlbase.core import documents
from dlbase.core import digest as digests
from dlbase.core.errors import BadSignature, WrongSubject
from dlbase.trust import keys, statements

#: The media types of the bundle versions read (v0.1 and v0.2 only in the old spelling).
MEDIA_TYPES = ("application/vnd.dev.sigstore.bundle+json;version=0.1",
               "application/vnd.dev.sigstore.bundle+json;version=0.2",
               "application/vnd.dev.sigstore.bundle+json;version=0.3",
               "application/vnd.dev.sigstore.bundle.v0.3+json")
#: The predicate type of cosign 3's image signature statement.
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
#: The (unsigned) manifest annotation cosign 3 puts the statement's predicate type in.
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
SIGNATURE = "signature"
ATTESTATION = "attestation"


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle, nothing verified yet."""

    where: str
    hint: str | None  # dlbase's fingerprint of the key the bundle names, if it names one
    kind: str  # SIGNATURE or ATTESTATION (what its content claims to be)
    predicate_type: str | None  # of a DSSE statement, read before verification (the same bytes are verified)
    dsse: tuple[bytes, list[bytes], object] | None = None  # (payload, signatures, payloadType)
    message: tuple[bytes, bytes] | None = None  # (SHA-256 digest, signature)


def hinted_fingerprint(hint: str) -> str | None:
    """dlbase's ``sha256:HEX`` fingerprint of a cosign key hint (base64 of the key's SHA-256);
    None for a hint that is no such digest (another signer's key id scheme)."""
    try:
        raw = base64.b64decode(hint, validate=True)
    except (binascii.Error, ValueError):
        return None
    return "sha256:" + raw.hex() if len(raw) == 32 else None


def _b64(value: object, source: documents.Source, what: str) -> bytes:
    if not isinstance(value, str):
        raise source.fail(f"{what} is {documents.type_word(value)}, not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise source.fail(f"{what} is not base64") from None


def parse(blob: bytes, where: str) -> Bundle:
    """The bundle in ``blob`` (bounded: :data:`documents.LIMITS` ``sigstore-bundle``), or
    BadSignature saying what is wrong with it."""
    source = documents.Source(where, BadSignature)
    doc = documents.expect_object(documents.parse_json(blob, "sigstore-bundle", source), source, "a bundle")
    media = documents.expect(doc, "mediaType", str, source)
    if media not in MEDIA_TYPES:
        raise source.fail(f"media type {media!r} is no Sigstore bundle version dlbase reads ({', '.join(MEDIA_TYPES)})")
    material = documents.expect(doc, "verificationMaterial", dict, source)
    key = documents.expect(material, "publicKey", dict, source, where="verificationMaterial", required=False)
    hint = documents.expect(key, "hint", str, source, where="verificationMaterial.publicKey",
                            required=False) if key else None
    fingerprint = hinted_fingerprint(hint) if hint else None
    envelope = documents.expect(doc, "dsseEnvelope", dict, source, required=False)
    message = documents.expect(doc, "messageSignature", dict, source, required=False)
    if (envelope is None) == (message is None):
        raise source.fail("a bundle holds exactly one of dsseEnvelope and messageSignature")
    if message is not None:
        md = documents.expect(message, "messageDigest", dict, source, where="messageSignature")
        algorithm = documents.expect(md, "algorithm", str, source, where="messageSignature.messageDigest")
        if algorithm != "SHA2_256":
            raise source.fail(f"message digest algorithm {algorithm!r}: only SHA2_256 is read (image digests are sha256)")
        found = _b64(md.get("digest"), source, "messageSignature.messageDigest.digest")
        sig = _b64(message.get("signature"), source, "messageSignature.signature")
        return Bundle(where, fingerprint, SIGNATURE, None, message=(found, sig))
    payload = _b64(envelope.get("payload"), source, "dsseEnvelope.payload")
    sigs = documents.expect(envelope, "signatures", list, source, where="dsseEnvelope")
    signatures = [_b64(s.get("sig") if isinstance(s, dict) else s, source, f"dsseEnvelope.signatures[{i}].sig")
                  for i, s in enumerate(sigs)]
    ptype = _declared_type(payload)
    return Bundle(where, fingerprint, SIGNATURE if ptype == SIGN_PREDICATE else ATTESTATION, ptype,
                  dsse=(payload, signatures, envelope.get("payloadType")))


def _declared_type(payload: bytes) -> str | None:
    """The predicate type a DSSE payload claims, before any check (None when unreadable):
    what decides whether the bundle is weighed as a signature or an attestation."""
    try:
        stmt = documents.parse_json(payload, "envelope", documents.Source("payload", BadSignature))
    except BadSignature:
        return None
    value = stmt.get("predicateType") if isinstance(stmt, dict) else None
    return value if isinstance(value, str) else None


def open_signed(public: ec.EllipticCurvePublicKey, bundle: Bundle, digest: str) -> dict | None:
    """What the bundle says when its signature verifies with this key, None when it does
    not: a signature as a simple-signing body (``critical.identity.docker-reference`` the
    subject's name, empty when it names none; ``optional`` its annotations), an
    attestation as its statement. A good signature over another digest is WrongSubject."""
    if bundle.message is not None:
        found, sig = bundle.message
        if not keys.verify_prehashed(public, sig, found):
            return None
        if found.hex() != digests.hex_part(digest):
            raise WrongSubject(f"{bundle.where}: the signature is valid but names sha256:{found.hex()}, not {digest}",
                               hint="a signature of another image was copied here; do not use this image")
        return simple_body("", digest, {})
    assert bundle.dsse is not None
    payload, sigs, ptype = bundle.dsse
    signed = statements.pae(payload)
    if not any(keys.verify(public, s, signed) for s in sigs):
        return None
    if ptype != statements.PAYLOAD_TYPE:
        raise BadSignature(f"{bundle.where}: payload type {ptype!r} is not {statements.PAYLOAD_TYPE}")
    stmt = statements.statement_of(payload, digest, bundle.where)
    if bundle.kind == ATTESTATION:
        return stmt
    algo, _, hexdigest = digest.partition(":")
    subject = next(s for s in stmt["subject"] if isinstance(s, dict) and (s.get("digest") or {}).get(algo) == hexdigest)
    notes = subject.get("annotations")
    name = subject.get("name")
    return simple_body(name if isinstance(name, str) else "", digest, notes if isinstance(notes, dict) else {})


def simple_body(reference: str, digest: str, optional: dict) -> dict:
    """A bundle signature's facts in the simple-signing shape the legacy checks read."""
    return {"critical": {"identity": {"docker-reference": reference}, "image": {"docker-manifest-digest": digest},
                         "type": SIGN_PREDICATE},
            "optional": optional}
