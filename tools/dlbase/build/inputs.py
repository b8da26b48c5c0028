"""What one build of a variant is made from: the one derivation every build path shares.

Why one place: with BuildKit every label is in the image config and every build argument
a RUN sees is in the image history, so each of them is part of the manifest digest.
`dlbase rebuild-check` is meant to give the digest `dlbase build` gave (the one `dlbase
push` publishes and `rebuild-check --attest` vouches for); any value derived a second way
(a build-id label, the wheelhouse URL, the epoch, a label's text) makes the two differ.
So `dlbase build`, `rebuild-check` (through `build`), `bake` and `bench update` take their
build arguments, labels and epoch from :func:`derive`, and the wheelhouse port from
:func:`wheelhouse_port`. The ``dlbase.build-id`` label is the engine's, derived from these
same values (:func:`dlbase.engine.buildkit.inputs_build_id`), so it follows them too.

What is *not* here and still decides the digest: the committed Dockerfile and context
(staged by :mod:`dlbase.build.context`), the base image, the wheels and the Debian
mirror's packages at build time.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from dlbase.core.errors import InvalidInput
from dlbase.define import labels as image_labels
from dlbase.define.project import Project
from dlbase.define.spec import BuildSpec

# A fixed port: the WHEELHOUSE build argument is part of the install steps' cache key and,
# with BuildKit, of the image history, so a port of its own would give a build another digest.
DEFAULT_WHEELHOUSE_PORT = 38211
SOURCE_URL = "https://github.com/dlbase/dlbase"

#: Build-time label -> the build argument the Dockerfile's LABEL step reads it from: the
#: map partials/labels.j2 is rendered from too.
LABEL_ARGS = image_labels.BUILD_ARGS


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def source_date_epoch(root: Path) -> int:
    """The build's one time: an env SOURCE_DATE_EPOCH, else the commit's time (``git log -1
    --format=%ct``), else 0. The OCI ``created`` label, BuildKit's SOURCE_DATE_EPOCH and
    the SOURCE_DATE_EPOCH build argument all take it from here, so they never disagree."""
    raw = os.environ.get("SOURCE_DATE_EPOCH") or _git(root, "log", "-1", "--format=%ct") or "0"
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"SOURCE_DATE_EPOCH={raw!r} is not a whole number of seconds",
                           hint="set it to a Unix time (e.g. `git log -1 --format=%ct`), or unset it") from None


def created_text(epoch: int) -> str:
    """The OCI ``created`` label for ``epoch`` (UTC, seconds)."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def revision(root: Path) -> str:
    """The commit, ``-dirty`` when tracked files differ from it, ``unknown`` outside git."""
    rev = _git(root, "rev-parse", "HEAD") or "unknown"
    if rev != "unknown" and _git(root, "status", "--porcelain", "--untracked-files=no"):
        rev += "-dirty"
    return rev


def build_labels(spec: BuildSpec, lock_hash: str, base_ref: str, base_digest: str, *,
                 revision: str, created: str) -> dict[str, str]:
    """The build-time labels (the Dockerfile's LABEL step sets them from build arguments)."""
    return {
        image_labels.CREATED: created,
        image_labels.REVISION: revision,
        image_labels.SOURCE: SOURCE_URL,
        image_labels.VERSION: f"{spec.release.torch}-{spec.line.name}-{spec.variant.flavor.name}-{lock_hash}",
        image_labels.BASE_NAME: base_ref,
        image_labels.BASE_DIGEST: base_digest,
        image_labels.LOCK_HASH: lock_hash,
    }


def label_buildargs(labels: dict[str, str]) -> dict[str, str]:
    """The build-time labels as the build arguments of the Dockerfile's single LABEL step
    (base.name is a static label already)."""
    return {arg: labels[key] for key, arg in LABEL_ARGS.items() if key in labels}


def wheelhouse_port(explicit: int | None = None) -> int:
    """The port a build serves its wheelhouse on: ``explicit``, else DLBASE_WHEELHOUSE_PORT,
    else :data:`DEFAULT_WHEELHOUSE_PORT`."""
    raw = explicit or os.environ.get("DLBASE_WHEELHOUSE_PORT") or DEFAULT_WHEELHOUSE_PORT
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"DLBASE_WHEELHOUSE_PORT={raw!r} is not a port number",
                           hint=f"set it to a free TCP port, or unset it (default {DEFAULT_WHEELHOUSE_PORT})") from None


@dataclass(frozen=True)
class BuildInputs:
    """Everything a build of one variant hands the builder besides the Dockerfile and the
    context, derived once (:func:`derive`)."""

    dockerfile: str  # relative to the project root, which is also the (staged) context's root
    source_date_epoch: int
    revision: str
    labels: dict[str, str]  # the build-time labels (LABEL step, from build arguments)
    extra_labels: dict[str, str] = field(default_factory=dict)  # --label: through the builder's labels
    wheelhouse_port: int = DEFAULT_WHEELHOUSE_PORT  # the port asked for (a busy one falls back)

    @property
    def label_args(self) -> dict[str, str]:
        return label_buildargs(self.labels)

    def buildargs(self, wheelhouse_url: str) -> dict[str, str]:
        """The build arguments, given the URL the wheelhouse is served at: it is one of them,
        so a build served on another port is another image."""
        return {"WHEELHOUSE": wheelhouse_url, "SOURCE_DATE_EPOCH": str(self.source_date_epoch), **self.label_args}


def derive(project: Project, spec: BuildSpec, *, lock_hash: str, base_ref: str, base_digest: str,
           extra_labels: dict[str, str] | None = None, port: int | None = None) -> BuildInputs:
    """The inputs of a build of ``spec``: one epoch (read once) for the ``created`` label and
    SOURCE_DATE_EPOCH, the revision, the build-time labels, the extra labels, the port
    (``port``, else :func:`wheelhouse_port`'s)."""
    epoch = source_date_epoch(project.root)
    rev = revision(project.root)
    labels = build_labels(spec, lock_hash, base_ref, base_digest, revision=rev, created=created_text(epoch))
    return BuildInputs(dockerfile=f"images/{spec.name}/Dockerfile", source_date_epoch=epoch, revision=rev,
                       labels=labels, extra_labels=dict(extra_labels or {}),
                       wheelhouse_port=wheelhouse_port(port))
