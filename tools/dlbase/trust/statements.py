"""in-toto statements in DSSE envelopes, as cosign stores attestations.

A statement names its subject (the image's repository and manifest digest), a predicate
type and the predicate. dlbase writes Statement v1 with exactly the four fields the spec
defines (``_type``, ``subject``, ``predicateType``, ``predicate``: cosign 3 parses
statements strictly and refuses any other); it reads v1 and v0.1, because cosign 2.x's
own ``cosign attest`` still writes v0.1 (the two differ in nothing dlbase reads). The envelope signs the DSSE pre-authentication encoding
(PAE, computed by securesystemslib) of the statement's bytes with the ECDSA key. The
envelope JSON follows the DSSE spec and cosign: ``payload`` and ``sig`` in standard
base64, ``keyid`` empty (a key-based signature names no key id).
"""

from __future__ import annotations

import base64
import json

from securesystemslib.dsse import Envelope

from cryptography.hazmat.primitives.asymmetric import ec

from dlbase.core import kinds
from dlbase.core import documents
from dlbase.core.errors import BadSignature, WrongSubject
from dlbase.trust import keys

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
STATEMENT_TYPE_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_TYPES_READ = (STATEMENT_TYPE, STATEMENT_TYPE_V01)
STATEMENT_FIELDS = ("_type", "subject", "predicateType", "predicate")
PAYLOAD_TYPE = "application/vnd.in-toto+json"
MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


def statement(name: str, digest: str, predicate_type: str, predicate: dict) -> dict:
    """A Statement v1 of ``predicate`` about ``name`` at ``digest`` (the spec's four fields only)."""
    algo, _, hexdigest = digest.partition(":")
    return {"_type": STATEMENT_TYPE, "subject": [{"name": name, "digest": {algo: hexdigest}}],
            "predicateType": predicate_type, "predicate": predicate}


def pae(payload: bytes) -> bytes:
    """The bytes a DSSE signature covers (securesystemslib's implementation)."""
    return Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={}).pae()


def canonical(body: object) -> bytes:
    """dlbase's canonical JSON bytes (sorted keys, no spaces). A predicate's canonical bytes
    are exactly the bytes it takes inside its statement's payload."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def payload_bytes(stmt: dict) -> bytes:
    """The canonical bytes of a statement (what the envelope carries and signs)."""
    return canonical(stmt)


def envelope_payload(blob: bytes) -> bytes:
    """The payload bytes of an envelope already checked by :func:`open_envelope`."""
    return base64.b64decode(documents.parse_json(blob, "envelope", documents.Source("the envelope"))["payload"])


def envelope(pair: keys.KeyPair, stmt: dict) -> bytes:
    """The signed DSSE envelope (JSON bytes) of one statement."""
    payload = payload_bytes(stmt)
    sig = keys.sign(pair, pae(payload))
    body = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]}
    return json.dumps(body, separators=(",", ":")).encode()


def _parts(blob: bytes, where: str) -> tuple[bytes, list[bytes], object]:
    """(payload, signatures, payload type) of a DSSE envelope."""
    env = documents.parse_json(blob, "envelope", documents.Source(where, BadSignature))
    try:
        payload = base64.b64decode(env["payload"], validate=True)
        sigs = [base64.b64decode(s["sig"], validate=True) for s in env.get("signatures") or []]
        return payload, sigs, env["payloadType"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadSignature(f"{where}: not a DSSE envelope") from None


def _verifies(public: ec.EllipticCurvePublicKey, payload: bytes, sigs: list[bytes]) -> bool:
    signed = pae(payload)
    return any(keys.verify(public, s, signed) for s in sigs)


def signed_by(public: ec.EllipticCurvePublicKey, blob: bytes) -> bool:
    """Whether some signature in the envelope verifies with this key (nothing else is checked)."""
    try:
        payload, sigs, _ptype = _parts(blob, "")
    except BadSignature:
        return False
    return _verifies(public, payload, sigs)


def open_envelope(public: ec.EllipticCurvePublicKey, blob: bytes, digest: str, where: str) -> dict:
    """Verify one envelope with the key and check its subject; the statement.

    Any signature in the envelope made by the key is enough (DSSE allows several).
    """
    payload, sigs, ptype = _parts(blob, where)
    if ptype != PAYLOAD_TYPE:
        raise BadSignature(f"{where}: payload type {ptype!r} is not {PAYLOAD_TYPE}")
    if not _verifies(public, payload, sigs):
        raise BadSignature(f"{where}: the attestation's signature does not verify with the key given",
                           hint="its statement was edited after signing, or another key signed it")
    return statement_of(payload, digest, where)


def open_if_signed(public: ec.EllipticCurvePublicKey, blob: bytes, digest: str, where: str) -> dict | None:
    """The statement of an envelope some signature of which verifies with this key; None when
    none does (or the blob is no envelope): the signature is checked once, whether the
    caller is trying keys or knows it. Once the key is known to have signed it, the same
    errors as :func:`open_envelope`."""
    try:
        payload, sigs, ptype = _parts(blob, where)
    except BadSignature:
        return None
    if not _verifies(public, payload, sigs):
        return None
    if ptype != PAYLOAD_TYPE:
        raise BadSignature(f"{where}: payload type {ptype!r} is not {PAYLOAD_TYPE}")
    return statement_of(payload, digest, where)


def statement_of(payload: bytes, digest: str, where: str) -> dict:
    """The statement in a payload whose signature is already checked: its shape and subject."""
    stmt = documents.parse_json(payload, "envelope", documents.Source(f"{where} (its signed statement)", BadSignature))
    try:
        subjects = stmt["subject"]
        if not isinstance(subjects, list) or not isinstance(stmt["predicateType"], str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BadSignature(f"{where}: the signed payload is not an in-toto statement") from None
    if stmt.get("_type") not in STATEMENT_TYPES_READ:
        raise BadSignature(f"{where}: statement type {stmt.get('_type')!r} is neither of "
                           f"{', '.join(STATEMENT_TYPES_READ)}")
    # The predicate is optional and, when present, an object (in-toto's Predicate layer);
    # readers then never meet a list or a string where they expect fields.
    if stmt.get("predicate") is None:
        stmt["predicate"] = {}
    elif not isinstance(stmt["predicate"], dict):
        raise BadSignature(f"{where}: the {stmt['predicateType']} statement's predicate is "
                           f"{kinds.kind_of(stmt['predicate'], 'json')}, not an object")
    algo, _, hexdigest = digest.partition(":")
    if not any((s.get("digest") or {}).get(algo) == hexdigest for s in subjects if isinstance(s, dict)):
        named = ", ".join(f"{algo}:{(s.get('digest') or {}).get(algo)}" for s in subjects if isinstance(s, dict))
        raise WrongSubject(f"{where}: a correctly signed {stmt['predicateType']} statement names {named or 'nothing'}, "
                           f"not {digest}",
                           hint="an attestation of another image was copied here; do not use this image")
    return stmt
