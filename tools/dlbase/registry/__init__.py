"""The OCI distribution (Registry HTTP API v2) client, daemon-free and docker-free.

- :mod:`client`: the calls dlbase makes (resolve a tag, read a manifest or blob, write
  the signature and attestation artifacts, list tags);
- :mod:`limits`: bounded HTTP (a size cap per body, a deadline per call, redirects by hand);
- :mod:`auth`: which server may see which secret, and what counts as loopback;
- :mod:`answers`: what each registry answer must look like before it is used.
"""
