"""The cosign/containers-image "simple signing" payload and its ``.sig`` layer.

The payload names the image by repository and manifest digest; the signature is
ECDSA-P256/SHA-256 over the payload's exact bytes, base64 in the layer annotation
``dev.cosignproject.cosign/signature``. The payload bytes are the layer blob, so a
verifier hashes and checks exactly what was signed.
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric import ec

from dlbase.core.errors import BadSignature, WrongSubject
from dlbase.trust import keys

MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"


def payload(reference: str, digest: str, optional: dict | None = None) -> bytes:
    """The payload for ``reference`` (REGISTRY/REPO) at manifest ``digest``, as bytes."""
    body = {"critical": {"identity": {"docker-reference": reference},
                         "image": {"docker-manifest-digest": digest},
                         "type": SIGNATURE_TYPE},
            "optional": optional or None}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(pair: keys.KeyPair, data: bytes) -> tuple[bytes, dict[str, str]]:
    """(layer blob, layer annotations)."""
    return data, {SIGNATURE_ANNOTATION: base64.b64encode(keys.sign(pair, data)).decode()}


def verify(public: ec.EllipticCurvePublicKey, blob: bytes, annotations: dict, digest: str, where: str) -> dict:
    """Check one ``.sig`` layer against the key and the expected digest; the payload.

    A bad signature is :class:`BadSignature`; a good one over another digest is
    :class:`WrongSubject`.
    """
    sig_b64 = (annotations or {}).get(SIGNATURE_ANNOTATION)
    if not sig_b64:
        raise BadSignature(f"{where}: the signature layer carries no {SIGNATURE_ANNOTATION} annotation")
    try:
        signature = base64.b64decode(sig_b64, validate=True)
    except ValueError:
        raise BadSignature(f"{where}: the signature annotation is not base64") from None
    if not keys.verify(public, signature, blob):
        raise BadSignature(f"{where}: the image signature does not verify with the key given",
                           hint="the image was signed with another key, or the payload was changed after signing")
    try:
        body = json.loads(blob)
        signed = body["critical"]["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError):
        raise BadSignature(f"{where}: the signed payload is not a simple-signing document") from None
    if signed != digest:
        raise WrongSubject(f"{where}: the signature is valid but names {signed}, not {digest}",
                           hint="a signature of another image was copied here; do not use this image")
    return body
