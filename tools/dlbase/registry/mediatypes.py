"""The OCI and Docker media types of images, named once.

The registry client asks for manifests by them, publish re-compresses layers by them,
trust's artifact store writes its ``.sig``/``.att`` manifests with them and the layer diff
reads an exported layout by them; each type is typed here only.
"""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"  # the empty descriptor of an artifact manifest
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = f"{OCI_LAYER}+gzip"
OCI_LAYER_ZSTD = f"{OCI_LAYER}+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = f"{DOCKER_LAYER}.gzip"

#: An index (multi-platform list) in either format.
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
#: Everything a manifest request accepts, indexes first.
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
