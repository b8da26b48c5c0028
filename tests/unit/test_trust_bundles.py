"""Sigstore bundles read as cosign 3 stores them, and hostile ones: ignored or a clear error, never a hang.

The registry is tests/support/odd_registry.py's (real HTTP on 127.0.0.1, answers set per
test); the keys, DSSE envelopes and signatures are real. The bundles are built here the
way cosign 3.1.1 writes them (measured: a Statement v1 of predicate type
``https://sigstore.dev/cosign/sign/v1`` whose subject is the digest only, in a DSSE
envelope; the key hint is base64 of the key's SHA-256; one manifest per bundle with the
image as ``subject``, listed in an index under ``sha256-<hex>`` on a registry without the
referrers API). The real cosign 3 is tests/integration/test_cosign3_interop.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from dlbase.core.errors import BadSignature, RegistryError, Unsigned, WrongSubject
from dlbase.registry.client import RegistryClient
from dlbase.trust import bundle, evidence, keys, referrers, statements
from dlbase.trust.policy import PUBLISHER, TrustedKey, TrustPolicy

from tests.support.odd_registry import MANIFEST_TYPE, REPO, TAG, answer, odd_registry, signed_image

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = "application/vnd.oci.empty.v1+json"
PAIR, OTHER = keys.generate(), keys.generate()


def trusted(pair: keys.KeyPair) -> TrustedKey:
    return TrustedKey(public=pair.public, fingerprint=keys.fingerprint(pair.public),
                      roles=((PUBLISHER, "release"),), source="test")


POLICY = TrustPolicy(keys=(trusted(PAIR),), signed_tag=False)


def hint_of(pair: keys.KeyPair) -> str:
    return base64.b64encode(bytes.fromhex(keys.fingerprint(pair.public)[7:])).decode()


def dsse_bundle(pair: keys.KeyPair, stmt: dict, *, hint: str | None = None) -> bytes:
    payload = json.dumps(stmt).encode()
    sig = keys.sign(pair, statements.pae(payload))
    return json.dumps({"mediaType": BUNDLE_TYPE,
                       "verificationMaterial": {"publicKey": {"hint": hint if hint is not None else hint_of(pair)}},
                       "dsseEnvelope": {"payload": base64.b64encode(payload).decode(),
                                        "payloadType": statements.PAYLOAD_TYPE,
                                        "signatures": [{"sig": base64.b64encode(sig).decode()}]}}).encode()


def sign_statement(digest: str, annotations: dict | None = None) -> dict:
    return {"_type": statements.STATEMENT_TYPE, "subject": [{"digest": {"sha256": digest[7:]},
                                                             "annotations": annotations or {}}],
            "predicateType": bundle.SIGN_PREDICATE, "predicate": {}}


def message_bundle(pair: keys.KeyPair, digest: str) -> bytes:
    raw = bytes.fromhex(digest[7:])
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    sig = pair.private.sign(raw, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    return json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
                       "verificationMaterial": {"publicKey": {"hint": hint_of(pair)}, "tlogEntries": []},
                       "messageSignature": {"messageDigest": {"algorithm": "SHA2_256",
                                                              "digest": base64.b64encode(raw).decode()},
                                            "signature": base64.b64encode(sig).decode()}}).encode()


def bundle_manifest(reg, subject: str, blob: bytes, *, size: int | None = None,
                    predicate_type: str = bundle.SIGN_PREDICATE) -> dict:
    """Serve one bundle manifest naming ``subject``; its index entry."""
    bdigest = reg.put_blob(blob)
    reg.put_blob(b"{}")
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": BUNDLE_TYPE,
                       "config": {"mediaType": EMPTY, "size": 2, "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
                       "layers": [{"mediaType": BUNDLE_TYPE, "size": len(blob) if size is None else size,
                                   "digest": bdigest}],
                       "annotations": {bundle.PREDICATE_ANNOTATION: predicate_type},
                       "subject": {"mediaType": MANIFEST_TYPE, "size": 1, "digest": subject}}).encode()
    mdigest = reg.put_manifest(f"m-{bdigest[7:19]}", body)
    return {"mediaType": MANIFEST_TYPE, "size": len(body), "digest": mdigest, "artifactType": EMPTY}


def fallback_index(reg, digest: str, entries: list[dict]) -> None:
    reg.put_manifest(referrers.fallback_tag(digest), json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}).encode())


def image(reg) -> str:
    return reg.put_manifest(TAG, json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "layers": []}).encode())


def check(reg, digest: str, policy: TrustPolicy = POLICY, tag: str | None = None) -> evidence.Evidence:
    return evidence.check(RegistryClient(reg.host), evidence.Subject(reg.host, REPO, digest), policy, tag=tag)


# --------------------------------------------------------------------------- what cosign 3 writes


def test_a_cosign3_signature_and_attestation_under_the_fallback_tag_are_read():
    with odd_registry() as reg:
        digest = image(reg)
        att = {"_type": statements.STATEMENT_TYPE_V01, "subject": [{"name": f"{reg.host}/{REPO}",
                                                                     "digest": {"sha256": digest[7:]}}],
               "predicateType": "https://example.com/review/v1", "predicate": {"reviewer": "alice"}}
        fallback_index(reg, digest, [bundle_manifest(reg, digest, dsse_bundle(PAIR, sign_statement(digest))),
                                     bundle_manifest(reg, digest, dsse_bundle(PAIR, att),
                                                     predicate_type=att["predicateType"])])
        found = check(reg, digest)
    assert found.signature["format"] == "bundle" and found.signature["identity"] is None
    assert [s["statement"]["predicateType"] for s in found.statements] == ["https://example.com/review/v1"]
    assert found.ignored == []


def test_without_any_signature_it_is_still_unsigned():
    with odd_registry() as reg:
        digest = image(reg)
        with pytest.raises(Unsigned, match="no Sigstore bundle"):
            check(reg, digest)


def test_the_referrers_api_is_read_and_a_message_signature_counts():
    with odd_registry() as reg:
        digest = image(reg)
        entry = bundle_manifest(reg, digest, message_bundle(PAIR, digest))
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [{**entry, "artifactType": BUNDLE_TYPE}]}).encode()
        reg.on("GET", f"/v2/{REPO}/referrers/{digest}", answer(200, index))
        found = check(reg, digest)
    assert found.signature["format"] == "bundle"


def test_a_message_signature_over_another_digest_is_wrong_subject():
    with odd_registry() as reg:
        digest = image(reg)
        other = "sha256:" + "ab" * 32
        fallback_index(reg, digest, [bundle_manifest(reg, digest, message_bundle(PAIR, other))])
        with pytest.raises(WrongSubject, match="names sha256:abab"):
            check(reg, digest)


def test_a_bundle_tag_annotation_binds_the_tag_like_a_legacy_signature():
    with odd_registry() as reg:
        digest = image(reg)
        fallback_index(reg, digest, [bundle_manifest(reg, digest,
                                                     dsse_bundle(PAIR, sign_statement(digest, {"tag": "v1"})))])
        strict = TrustPolicy(keys=(trusted(PAIR),))
        assert check(reg, digest, strict, tag="v1").signature["tag"] == "v1"
        from dlbase.core.errors import WrongIdentity
        with pytest.raises(WrongIdentity, match="names tag v2"):
            check(reg, digest, strict, tag="v2")


def test_a_bundle_naming_another_repository_is_wrong_identity():
    from dlbase.core.errors import WrongIdentity
    with odd_registry() as reg:
        digest = image(reg)
        stmt = sign_statement(digest)
        stmt["subject"][0]["name"] = "elsewhere.example/team/other"
        fallback_index(reg, digest, [bundle_manifest(reg, digest, dsse_bundle(PAIR, stmt))])
        with pytest.raises(WrongIdentity, match="elsewhere.example/team/other"):
            check(reg, digest)


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("signer, hinted, needle", [
    # Signed by the policy's key but naming another: not the policy key's (cosign looks the
    # key up by its hint), so ignored, and the image has no good signature.
    (PAIR, OTHER, "no image signature verifies"),
    # Naming the policy's key but signed by another: changed after signing.
    (OTHER, PAIR, "changed after signing"),
], ids=["hint-names-another-key", "hint-names-the-policy-key-but-another-signed"])
def test_the_key_hint_picks_the_one_key_tried(signer, hinted, needle):
    with odd_registry() as reg:
        digest = image(reg)
        fallback_index(reg, digest, [bundle_manifest(reg, digest,
                                                     dsse_bundle(signer, sign_statement(digest), hint=hint_of(hinted)))])
        with pytest.raises(BadSignature, match=needle):
            check(reg, digest)


def test_a_referrer_about_another_digest_is_ignored():
    with odd_registry() as reg:
        digest = signed_image(reg, PAIR)
        other = "sha256:" + "ef" * 32
        fallback_index(reg, digest, [bundle_manifest(reg, other, dsse_bundle(PAIR, sign_statement(other)))])
        found = check(reg, digest)
    assert found.signature["format"] == "legacy"
    [ignored] = found.ignored
    assert ignored["kind"] == "referrer" and f"about {other}, not {digest}" in ignored["why"]


def test_a_100_mb_bundle_is_ignored_before_it_is_downloaded():
    with odd_registry() as reg:
        digest = signed_image(reg, PAIR)
        fallback_index(reg, digest, [bundle_manifest(reg, digest, b"{}", size=100 << 20)])
        found = check(reg, digest)
        blob_reads = [s for s in reg.seen if "/blobs/" in s.path and s.method == "GET"]
    assert "more than the 67,108,864 a bundle may be" in found.ignored[0]["why"]
    assert len(blob_reads) == 1  # the legacy signature's only


def test_a_100_mb_bundle_is_refused_by_the_bounded_reader():
    with pytest.raises(BadSignature, match="too big for a Sigstore bundle"):
        bundle.parse(b"{" + b" " * (100 << 20) + b"}", "a bundle")


def test_a_bundle_that_lies_about_its_size_is_cut_off_and_ignored():
    with odd_registry() as reg:
        digest = signed_image(reg, PAIR)
        entry = bundle_manifest(reg, digest, b"{}")
        huge = b"x" * (referrers.BUNDLE_MAX + 1)
        blob_path = f"/v2/{REPO}/blobs/" + json.loads(reg.manifests[entry["digest"]])["layers"][0]["digest"]
        reg.on("GET", blob_path, answer(200, huge))
        fallback_index(reg, digest, [entry])
        found = check(reg, digest)
    assert found.signature["format"] == "legacy" and "more than" in found.ignored[0]["why"]


def test_a_referrers_index_with_10000_entries_is_a_clear_error_at_once():
    with odd_registry() as reg:
        digest = signed_image(reg, PAIR)
        entries = [{"mediaType": MANIFEST_TYPE, "size": 100, "digest": "sha256:" + f"{i:064x}",
                    "artifactType": BUNDLE_TYPE} for i in range(10_000)]
        fallback_index(reg, digest, entries)
        t0 = time.monotonic()
        with pytest.raises(RegistryError, match="10000 referrers that may be Sigstore bundles"):
            check(reg, digest)
        assert time.monotonic() - t0 < 10
        assert len(reg.seen) < 20  # not one request per entry


def test_10000_referrers_of_other_kinds_are_skipped_unread():
    with odd_registry() as reg:
        digest = signed_image(reg, PAIR)
        entries = [{"mediaType": MANIFEST_TYPE, "size": 100, "digest": "sha256:" + f"{i:064x}",
                    "artifactType": "application/spdx+json"} for i in range(10_000)]
        fallback_index(reg, digest, entries)
        assert check(reg, digest).signature["format"] == "legacy"
        assert len(reg.seen) < 20


@pytest.mark.parametrize("route", [
    answer(200, b"<!doctype html><html><body>Sign in to the proxy</body></html>", {"Content-Type": "text/html"}),
    answer(302, b"", {"Location": "/v2/x/y/referrers/loop"}),
], ids=["html", "redirect-loop"])
def test_a_referrers_endpoint_answering_no_index_is_ignored_and_the_tags_still_read(route):
    with odd_registry() as reg:
        digest = signed_image(reg, PAIR)
        reg.on("GET", f"/v2/{REPO}/referrers/", route)
        t0 = time.monotonic()
        found = check(reg, digest)
    assert time.monotonic() - t0 < 10
    assert found.signature["format"] == "legacy"
    [ignored] = found.ignored
    assert ignored["kind"] == "referrer" and "referrers API answered no usable index" in ignored["why"]


@pytest.mark.parametrize("doc, needle", [
    (b"[]", "must be a JSON object"),
    (json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v9+json"}).encode(), "no Sigstore bundle version"),
    (json.dumps({"mediaType": BUNDLE_TYPE, "verificationMaterial": {}}).encode(), "exactly one of"),
    (json.dumps({"mediaType": BUNDLE_TYPE, "verificationMaterial": {},
                 "dsseEnvelope": {"payload": "!!", "signatures": []}}).encode(), "not base64"),
    (json.dumps({"mediaType": BUNDLE_TYPE, "verificationMaterial": {"publicKey": "x"}}).encode(), "publicKey"),
])
def test_malformed_bundles_are_bad_signatures_naming_the_problem(doc, needle):
    with pytest.raises(BadSignature, match=needle):
        bundle.parse(doc, "a bundle")


def test_a_malformed_bundle_on_the_registry_is_ignored_with_why():
    with odd_registry() as reg:
        digest = signed_image(reg, PAIR)
        fallback_index(reg, digest, [bundle_manifest(reg, digest, b'{"mediaType": 3}')])
        found = check(reg, digest)
    assert found.signature["format"] == "legacy" and "not a readable Sigstore bundle" in found.ignored[0]["why"]


def test_the_hint_is_dlbase_s_fingerprint():
    assert bundle.hinted_fingerprint(hint_of(PAIR)) == keys.fingerprint(PAIR.public)
    assert bundle.hinted_fingerprint("not base64!") is None and bundle.hinted_fingerprint("AAAA") is None
