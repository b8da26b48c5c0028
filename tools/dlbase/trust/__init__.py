"""Signatures and attestations that travel with an image, in the registry.

The evidence for an image (its signature, its SBOM, its provenance, every verification
any host ran) is stored next to it in the registry, found from the image's manifest
digest alone, in the tag layout cosign and containers/image read (distribution 2.8 has
no referrers API): ``sha256-<hex>.sig`` and ``sha256-<hex>.att``.

Small modules, one job each:

- :mod:`keys`: the cosign-compatible key pair (ECDSA P-256, encrypted sigstore PEM);
- :mod:`simplesign`: the simple-signing payload and the ``.sig`` layer;
- :mod:`statements`: in-toto statements (v1 written; v1 and v0.1 read) in DSSE envelopes;
- :mod:`predicates`: SBOM, SLSA provenance, the verification result and rebuilt identical;
- :mod:`store`: reading and writing the ``.sig``/``.att`` artifacts on the registry;
- :mod:`evidence`: what push and verify attach, and what trust checks;
- :mod:`policy`: the consumer's policy over the verified evidence;
- :mod:`rebuilt`: a second builder's rebuilt-identical statement: the digest comparison and what
  counts for a ``rebuilt_identical`` requirement;
- :mod:`attach`: gathering the predicates each verb attaches.

What those record that is asked of the host (GPUs, driver, builder versions) is
:mod:`dlbase.verify.hostfacts`'s, and of the image (its dpkg status) :mod:`dlbase.image.debian`'s.

Nothing here prints or exits; failures are typed errors from :mod:`dlbase.core.errors`.
"""
