"""DSSE envelopes and simple-signing payloads, without a registry (the policy: test_trust_policy.py).

Envelopes are verified twice: by dlbase's own check and by securesystemslib's DSSE
implementation (an independent verifier of the same spec).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from dlbase.core.errors import BadSignature, WrongSubject
from dlbase.trust import keys, predicates, simplesign, statements, store
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

DIGEST = "sha256:" + hashlib.sha256(b"image").hexdigest()
OTHER = "sha256:" + hashlib.sha256(b"other").hexdigest()
NAME = "127.0.0.1:5000/team/pytorch"


def sslib_key(public) -> SSlibKey:
    """securesystemslib's view of the key, with cosign's empty key id."""
    return SSlibKey("", "ecdsa", "ecdsa-sha2-nistp256",
                    {"public": public.public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()})


@pytest.fixture(scope="module")
def pair():
    return keys.generate()


def _envelope(pair, digest=DIGEST):
    stmt = statements.statement(NAME, digest, predicates.VERIFICATION_TYPE, {"result": "passed"})
    return statements.envelope(pair, stmt)


def test_envelope_verifies_with_securesystemslib(pair):
    env = json.loads(_envelope(pair))
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert env["signatures"][0]["keyid"] == ""
    envelope = Envelope.from_dict(json.loads(json.dumps(env)))
    key = sslib_key(pair.public)
    assert "" in envelope.verify([key], 1)
    stmt = json.loads(envelope.payload)
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["subject"] == [{"name": NAME, "digest": {"sha256": DIGEST.split(":")[1]}}]


def test_securesystemslib_rejects_an_edited_payload(pair):
    env = json.loads(_envelope(pair))
    stmt = json.loads(base64.b64decode(env["payload"]))
    stmt["predicate"]["result"] = "failed"
    env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(json.loads(json.dumps(env))).verify([sslib_key(pair.public)], 1)
    with pytest.raises(BadSignature, match="does not verify"):
        statements.open_envelope(pair.public, json.dumps(env).encode(), DIGEST, "att")


def test_own_check_accepts_good_and_names_the_failure(pair):
    assert statements.open_envelope(pair.public, _envelope(pair), DIGEST, "att")["predicate"] == {"result": "passed"}
    with pytest.raises(BadSignature, match="does not verify"):
        statements.open_envelope(keys.generate().public, _envelope(pair), DIGEST, "att")
    with pytest.raises(WrongSubject, match=OTHER):
        statements.open_envelope(pair.public, _envelope(pair, OTHER), DIGEST, "att")
    with pytest.raises(BadSignature, match="not a DSSE envelope"):
        statements.open_envelope(pair.public, b"{}", DIGEST, "att")


def test_simple_signing_payload_and_checks(pair):
    data = simplesign.payload(NAME, DIGEST)
    body = json.loads(data)
    assert body["critical"] == {"identity": {"docker-reference": NAME}, "image": {"docker-manifest-digest": DIGEST},
                                "type": "cosign container image signature"}
    blob, ann = simplesign.sign(pair, data)
    assert simplesign.verify(pair.public, blob, ann, DIGEST, "sig")["critical"]["image"]["docker-manifest-digest"] == DIGEST
    with pytest.raises(WrongSubject):
        simplesign.verify(pair.public, blob, ann, OTHER, "sig")
    with pytest.raises(BadSignature):
        simplesign.verify(keys.generate().public, blob, ann, DIGEST, "sig")
    with pytest.raises(BadSignature):
        simplesign.verify(pair.public, blob.replace(b"cosign", b"Cosign"), ann, DIGEST, "sig")
    with pytest.raises(BadSignature, match="no dev.cosignproject.cosign/signature"):
        simplesign.verify(pair.public, blob, {}, DIGEST, "sig")


def test_manifest_layout():
    layer = store.Layer(b"x", statements.MEDIA_TYPE, {"predicateType": "t"})
    body = json.loads(store.manifest_bytes([layer.descriptor()]))
    assert body["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert body["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert body["config"]["digest"] == "sha256:" + hashlib.sha256(b"{}").hexdigest()
    assert body["layers"][0]["digest"] == "sha256:" + hashlib.sha256(b"x").hexdigest()
    assert store.sig_tag(DIGEST) == f"sha256-{DIGEST[7:]}.sig"
    assert store.att_tag(DIGEST) == f"sha256-{DIGEST[7:]}.att"


def test_signed_tag_annotations_and_signer_fingerprint(pair):
    """The cosign `-a tag=...` form: the tag sits in the signed `optional` map, so it
    cannot be changed without breaking the signature; the signer's fingerprint is an
    unsigned layer annotation, only a claim."""
    blob, ann = simplesign.sign(pair, simplesign.payload(NAME, DIGEST, {"tag": "2.6-runtime"}))
    body = simplesign.verify(pair.public, blob, ann, DIGEST, "sig")
    assert body["optional"] == {"tag": "2.6-runtime"}
    assert simplesign.signed_tag(body) == "2.6-runtime" and simplesign.signed_reference(body) == NAME
    assert simplesign.signed_tag(json.loads(simplesign.payload(NAME, DIGEST))) is None
    assert ann[simplesign.SIGNER_ANNOTATION] == keys.fingerprint(pair.public)
    assert not simplesign.signed_by(pair.public, blob.replace(b"2.6-runtime", b"2.5-runtime"), ann)
    assert not simplesign.signed_by(pair.public, blob, {simplesign.SIGNATURE_ANNOTATION: "not base64!"})
    assert statements.signed_by(pair.public, _envelope(pair))
    assert not statements.signed_by(keys.generate().public, _envelope(pair))
    assert not statements.signed_by(pair.public, b"[]")


# --------------------------------------------------------------------------- statement versions


def _signed(pair, stmt: dict) -> bytes:
    """An envelope of exactly these statement bytes (as another tool would write it)."""
    payload = json.dumps(stmt).encode()
    sig = keys.sign(pair, statements.pae(payload))
    return json.dumps({"payloadType": statements.PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                       "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]}).encode()


def _cosign_v01(predicate_type="https://example.com/review/v1", predicate=None) -> dict:
    """What cosign 2.5's `attest` writes (recorded from a real run): Statement v0.1."""
    return {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": predicate_type,
            "subject": [{"name": NAME, "digest": {"sha256": DIGEST.split(":")[1]}}],
            "predicate": {"hello": "world"} if predicate is None else predicate}


def test_written_statements_carry_only_the_four_spec_fields(pair):
    stmt = json.loads(statements.envelope_payload(_envelope(pair)))
    assert sorted(stmt) == sorted(["_type", "subject", "predicateType", "predicate"])
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"


def test_cosign_v01_statements_are_read_like_v1(pair):
    stmt = statements.open_envelope(pair.public, _signed(pair, _cosign_v01()), DIGEST, "att")
    assert stmt["predicateType"] == "https://example.com/review/v1" and stmt["predicate"] == {"hello": "world"}
    without = _cosign_v01()
    del without["predicate"]  # optional in the spec: read as an empty object
    assert statements.open_envelope(pair.public, _signed(pair, without), DIGEST, "att")["predicate"] == {}


def test_other_statement_types_and_non_object_predicates_are_refused(pair):
    odd = {**_cosign_v01(), "_type": "https://in-toto.io/Statement/v2"}
    with pytest.raises(BadSignature, match="statement type 'https://in-toto.io/Statement/v2' is neither"):
        statements.open_envelope(pair.public, _signed(pair, odd), DIGEST, "att")
    with pytest.raises(BadSignature, match="predicate is an array, not an object"):
        statements.open_envelope(pair.public, _signed(pair, _cosign_v01(predicate=[1, 2])), DIGEST, "att")
    with pytest.raises(BadSignature, match="not an in-toto statement"):
        statements.open_envelope(pair.public, _signed(pair, {**_cosign_v01(), "subject": "x"}), DIGEST, "att")
