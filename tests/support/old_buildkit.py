"""Whether a registry cache export of the project's Dockerfile can finish on this daemon.

Docker 26's built-in BuildKit (0.13) never leaves "preparing build cache for export" for the
project's Dockerfile: its cache-chain loop removal is exponential in the number of
``COPY --from=sources`` links. Measured on this machine with `docker buildx build
--cache-to type=registry,...` of the small project: 2 links 2.7 s, 3 or more held until
killed, dockerd growing about 100 MB/s to 24 GB (mode=max and mode=min alike). Known upstream
(moby/buildkit#5005 and #6008; the exporter was rewritten in #6129). GitHub's runners use a
current BuildKit, where the generated workflow's cache works. Tests that export a registry
cache (even one meant to fail at the push: the preparation comes first) run only where the
operator says the daemon's BuildKit has that rewrite.
"""

from __future__ import annotations

import os

import pytest

#: Set to 1 on a daemon whose BuildKit is >= 0.25 (the rewritten cache exporter).
OPT_IN = "DLBASE_TEST_REGISTRY_CACHE_EXPORT"

needs_working_cache_export = pytest.mark.skipif(
    os.environ.get(OPT_IN) != "1",
    reason=f"Docker 26's BuildKit 0.13 never finishes exporting a registry cache of this Dockerfile "
           f"(moby/buildkit#5005); set {OPT_IN}=1 on a daemon with BuildKit >= 0.25")
