"""The image labels dlbase writes and reads, named once.

The variant's fixed labels are :meth:`dlbase.define.spec.BuildSpec.static_labels`; the
build-time ones (created, revision, version, source, base digest, lock hash) are passed as
build arguments so they never invalidate the layer cache. :data:`BUILD_ARGS` is that map,
the one both sides read: the builder fills the arguments from it and the Dockerfile's one
LABEL step (templates/partials/labels.j2) is rendered from it, so the two cannot drift.
"""

from __future__ import annotations

OCI = "org.opencontainers.image"
TITLE = f"{OCI}.title"
DESCRIPTION = f"{OCI}.description"
CREATED = f"{OCI}.created"
REVISION = f"{OCI}.revision"
VERSION = f"{OCI}.version"
SOURCE = f"{OCI}.source"
BASE_NAME = f"{OCI}.base.name"
BASE_DIGEST = f"{OCI}.base.digest"

#: The variant an image was built from (its name in the matrix): images are found by it
#: without the matrix (`dlbase run VARIANT` outside a checkout).
VARIANT = "dlbase.variant"
FLAVOR = "dlbase.flavor"
#: "true" on images whose flavor serves JupyterLab (the matrix's ``jupyter:``), else "false":
#: `dlbase run` reads it to publish the notebook port and print the URL, without a checkout.
JUPYTER = "dlbase.jupyter"
LOCK_HASH = "dlbase.lock-hash"

#: Build-time label -> the build argument the Dockerfile's LABEL step reads it from, in the
#: order the step writes them.
BUILD_ARGS: dict[str, str] = {
    CREATED: "OCI_CREATED",
    REVISION: "OCI_REVISION",
    VERSION: "OCI_VERSION",
    SOURCE: "OCI_SOURCE",
    BASE_DIGEST: "OCI_BASE_DIGEST",
    LOCK_HASH: "DLBASE_LOCK_HASH",
}
