"""The cosign/containers-image "simple signing" payload and its ``.sig`` layer.

The payload names the image by repository and manifest digest; the signature is
ECDSA-P256/SHA-256 over the payload's exact bytes, base64 in the layer annotation
``dev.cosignproject.cosign/signature``. The payload bytes are the layer blob, so a
verifier hashes and checks exactly what was signed.

The payload's ``optional`` map carries signed annotations, in cosign's ``-a key=value``
form: ``push --sign`` writes ``{"tag": TAG}``, one signature per pushed tag (a map holds
one ``tag``, and ``cosign verify -a tag=TAG`` compares that one value exactly), so a
consumer checking ``REF:TAG`` can demand a signature that names TAG.

Every layer dlbase writes also carries the signer's key fingerprint in an (unsigned)
annotation. It proves nothing; it only tells a verifier which key a layer claims, so a
layer claiming a key the consumer trusts but failing under it is tampering, while a
layer of a key the consumer does not know is merely someone else's.
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric import ec

from dlbase.core import documents
from dlbase.core.errors import BadSignature, WrongSubject
from dlbase.trust import keys

MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
SIGNER_ANNOTATION = "dev.dlbase/signer-fingerprint"
TAG_ANNOTATION = "tag"


def payload(reference: str, digest: str, optional: dict | None = None) -> bytes:
    """The payload for ``reference`` (REGISTRY/REPO) at manifest ``digest``, as bytes."""
    body = {"critical": {"identity": {"docker-reference": reference},
                         "image": {"docker-manifest-digest": digest},
                         "type": SIGNATURE_TYPE},
            "optional": optional or None}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(pair: keys.KeyPair, data: bytes) -> tuple[bytes, dict[str, str]]:
    """(layer blob, layer annotations)."""
    return data, {SIGNATURE_ANNOTATION: base64.b64encode(keys.sign(pair, data)).decode(),
                  SIGNER_ANNOTATION: keys.fingerprint(pair.public)}


def signed_by(public: ec.EllipticCurvePublicKey, blob: bytes, annotations: dict) -> bool:
    """Whether the layer's signature verifies with this key (nothing else is checked)."""
    try:
        signature = base64.b64decode((annotations or {}).get(SIGNATURE_ANNOTATION) or "", validate=True)
    except ValueError:
        return False
    return bool(signature) and keys.verify(public, signature, blob)


def verify(public: ec.EllipticCurvePublicKey, blob: bytes, annotations: dict, digest: str, where: str) -> dict:
    """Check one ``.sig`` layer against the key and the expected digest; the payload.

    A bad signature is :class:`BadSignature`; a good one over another digest is
    :class:`WrongSubject`.
    """
    if not (annotations or {}).get(SIGNATURE_ANNOTATION):
        raise BadSignature(f"{where}: the signature layer carries no {SIGNATURE_ANNOTATION} annotation")
    body = open_signed(public, blob, annotations, digest, where)
    if body is None:
        raise BadSignature(f"{where}: the image signature does not verify with the key given",
                           hint="the image was signed with another key, or the payload was changed after signing")
    return body


def open_signed(public: ec.EllipticCurvePublicKey, blob: bytes, annotations: dict, digest: str,
                where: str) -> dict | None:
    """The payload of a ``.sig`` layer whose signature verifies with this key, None when it
    does not: the signature is checked once, whether the caller is trying keys or knows it.
    A good signature over no simple-signing document is :class:`BadSignature`, over
    another digest :class:`WrongSubject`."""
    if not signed_by(public, blob, annotations):
        return None
    body = documents.parse_json(blob, "envelope", documents.Source(f"{where} (its signed payload)", BadSignature))
    try:
        signed = body["critical"]["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError):
        raise BadSignature(f"{where}: the signed payload is not a simple-signing document") from None
    if signed != digest:
        raise WrongSubject(f"{where}: the signature is valid but names {signed}, not {digest}",
                           hint="a signature of another image was copied here; do not use this image")
    return body


def signed_reference(body: dict) -> str:
    """The repository the signature was made for (``critical.identity.docker-reference``)."""
    identity = (body.get("critical") or {}).get("identity") or {}
    return str(identity.get("docker-reference") or "")


def signed_tag(body: dict) -> str | None:
    """The tag a signature names in its signed annotations, if any."""
    optional = body.get("optional")
    value = optional.get(TAG_ANNOTATION) if isinstance(optional, dict) else None
    return value if isinstance(value, str) else None
