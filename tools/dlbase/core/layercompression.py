"""How an image's layers are compressed: the two names, and what BuildKit's image exporter
is asked for to write each.

One home for these facts, read by the matrix (a line's choice), the builders (the exporter
attributes), the push (what an image already is) and the docs. Pure: no docker import.

Why the exporter is pinned as it is:

- ``force-compression=true``: without it BuildKit keeps the base image's layers as they
  came (gzip from the bootstrap), so a "zstd" image would be mixed and a Docker 20.10
  pull of it would fail only on some layers;
- ``oci-mediatypes=true``: zstd layers exist only as OCI media types
  (``application/vnd.oci.image.layer.v1.tar+zstd``);
- ``compression-level``: BuildKit maps zstd levels onto klauspost/compress's encoder
  speeds (< 3 fastest, 3..6 default, 7..8 better, >= 9 best). 3 is zstd's own default and
  BuildKit's: naming it keeps a later BuildKit whose default moves from changing every
  layer's bytes (and so every digest) silently. What else fixes the bytes is the
  encoder's code, klauspost/compress inside the daemon's BuildKit (Docker 26.1's, from
  Debian's golang-github-klauspost-compress): a daemon upgrade may change them, as it may
  for gzip. Two clean builds on one daemon give one digest
  (tests/integration/test_buildkit_build.py; `dlbase bench build`'s second cold build
  checks the full image).
  gzip stays at BuildKit's default (compress/flate level 6; level 1 was measured at
  +9.2% bytes for 36% less time, docs/bench-build.md, and not taken).
"""

from __future__ import annotations

GZIP, ZSTD = "gzip", "zstd"
CHOICES = (GZIP, ZSTD)

#: The zstd level BuildKit's exporter writes (see the module doc for why it is named).
ZSTD_BUILD_LEVEL = 3

#: The label a build writes so that a push knows what the daemon's layers are without
#: reading them (Docker 26's image inspect does not show the manifest's media types).
LABEL = "dlbase.layer-compression"

#: The Docker Engine that first pulls zstd layers (the docs and error messages name it).
DOCKER_MIN_ZSTD = (23, 0)


def of_labels(labels: dict[str, str] | None) -> str:
    """The encoding of an image's own layers, from its labels: what its build wrote (every
    dlbase build sets :data:`LABEL`); an image built before the label existed is gzip,
    all there was then."""
    said = (labels or {}).get(LABEL)
    return said if said in CHOICES else GZIP


def exporter_attrs(compression: str) -> str:
    """The attributes of BuildKit's ``type=image`` (or ``type=docker``) exporter after its
    type, for ``compression``: ``oci-mediatypes=true,compression=zstd,...``."""
    if compression not in CHOICES:
        raise ValueError(f"unknown layer compression {compression!r}")
    attrs = ["oci-mediatypes=true", f"compression={compression}", "force-compression=true"]
    if compression == ZSTD:
        attrs.append(f"compression-level={ZSTD_BUILD_LEVEL}")
    return ",".join(attrs)


def reads_zstd(server_version: str | None, containerd_store: bool | None) -> bool | None:
    """Whether a daemon can hold and run zstd layers: Docker >= 23 on the containerd image
    store (the classic store's graph drivers keep only what ``docker load`` gives them, and
    BuildKit's image exporter needs the containerd store to write into). None: unknown."""
    if server_version is None:
        return None
    try:
        major, minor = (int(part) for part in server_version.split("+")[0].split("-")[0].split(".")[:2])
    except ValueError:
        return None
    if (major, minor) < DOCKER_MIN_ZSTD:
        return False
    return containerd_store
