"""What each layer of an image holds: its group, size, packages, and files it shadows.

Why: the layered design only pays off if a layer holds its own files and nothing of a
lower one (a rewritten .pyc or a touched pip file turns a pillow bump back into a
torch-sized download). Reading ``docker save``'s per-layer tars is the one way to see it:
the merged filesystem hides which layer a file came from.

The stream is read once, in order, without holding any layer in memory; only the paths
are kept. This module never talks to the daemon itself: it gets a stream from the engine.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import tarfile
from dataclasses import asdict, dataclass, field
from typing import IO

from dlbase.core import layerstream
from dlbase.define.layering import LAYERS_DIR, LAYERS_IN_IMAGE

#: A group's subset: in the image (/opt/dlbase/layers/NN-<group>.txt, which its RUN installs) or
#: the folder its COPY takes (images/_layers/NN-<group>-<hash>/, under stage "sources").
_GROUP_RE = re.compile(rf"(?:{re.escape(LAYERS_IN_IMAGE)}/\d+-(?P<name>[a-z0-9][a-z0-9._-]*)\.txt"
                       rf"|{re.escape(LAYERS_DIR)}/\d+-(?P<folder>[a-z0-9][a-z0-9._-]*?)-[0-9a-f]{{12}}/)")
_METADATA_RE = re.compile(r"[^/]+\.dist-info/METADATA$")
#: How many shadowing paths a row names (the count is always complete).
SHADOW_EXAMPLES = 5


@dataclass
class LayerRow:
    """One layer of an image, lowest first."""

    index: int
    group: str
    step: str
    size_bytes: int
    packages: int
    shadowed: int
    shadow_examples: list[str] = field(default_factory=list)
    diff_id: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _LayerScan:
    files: set[str] = field(default_factory=set)
    whiteouts: set[str] = field(default_factory=set)
    size: int = 0
    packages: int = 0
    link: str | None = None


def _norm(name: str) -> str:
    return "/" + posixpath.normpath(name.lstrip("./")).lstrip("/") if name not in (".", "./") else "/"


def _scan_layer(fileobj: IO[bytes]) -> _LayerScan:
    scan = _LayerScan()
    with tarfile.open(fileobj=layerstream.plain(fileobj), mode="r|") as tar:  # stored as plain, gzip or zstd
        for member in tar:
            path = _norm(member.name)
            base = posixpath.basename(path)
            if base.startswith(".wh."):
                scan.whiteouts.add(posixpath.join(posixpath.dirname(path), base[4:]))
                continue
            if member.isdir():
                continue
            scan.files.add(path)
            if member.isfile():
                scan.size += member.size
            if _METADATA_RE.search(path):
                scan.packages += 1
    return scan


def _step_text(created_by: str) -> str:
    """``docker history``'s CreatedBy without the shell prefix and build args."""
    # BuildKit writes "RUN |N ARG=... /bin/bash -c ...", the classic builder "|N ARG=... /bin/sh -c ...".
    text = re.sub(r"^(RUN )?\|\d+ (\S+=\S* )*", "", created_by.strip())
    text = re.sub(r"^(RUN )?/bin/(ba)?sh (-o pipefail )?-c (#\(nop\)\s*)?", "", text)
    text = re.sub(r" # buildkit$", "", text)
    return re.sub(r"\s+", " ", text)[:100]


#: Group names of the layers that are not a lock group: the base, the OS packages, the venv.
BASE, OS, VENV = "base", "os packages", "venv"


def _group(created_by: str, step: str) -> str:
    """The layer group a step installs, "(group subset)" for the COPY of its subset, or the
    kind of a step the Dockerfile always has; empty for the rest (user, tests, image facts)."""
    m = _GROUP_RE.search(created_by)
    if m:
        name = m["name"] or m["folder"]
        return f"({name} subset)" if step.startswith("COPY") else name
    if step.startswith("COPY"):
        return ""
    if " -m venv " in step:
        return VENV
    if "apt-get install" in step:
        return OS
    return ""


def is_package_layer(row: LayerRow) -> bool:
    """A layer that installs Python packages (a lock group or the venv): it must not shadow."""
    return bool(row.group) and not row.group.startswith("(") and row.group not in (BASE, OS)


def analyse(stream: IO[bytes]) -> list[LayerRow]:
    """Read a ``docker save`` stream; one row per layer, lowest first."""
    scans: dict[str, _LayerScan] = {}
    blobs: dict[str, bytes] = {}
    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            name = member.name.lstrip("./")
            if name.endswith("/layer.tar") or name.startswith("blobs/"):
                if member.issym():
                    scans[name] = _LayerScan(link=posixpath.normpath(posixpath.join(posixpath.dirname(name),
                                                                                    member.linkname)))
                elif member.isfile():
                    fh = outer.extractfile(member)
                    if fh is None:
                        continue
                    # Under the containerd image store `docker save` writes an OCI layout: the
                    # config is a blob too (no .json name), and layers stay compressed.
                    source: IO[bytes] = fh
                    if member.size < 16 << 20:
                        blobs[name] = fh.read()
                        source = io.BytesIO(blobs[name])
                    try:
                        scans[name] = _scan_layer(source)
                    except tarfile.ReadError:  # a blob that is a config or an index, not a layer
                        pass
            elif name.endswith(".json") and member.isfile() and member.size < 16 << 20:
                fh = outer.extractfile(member)
                if fh is not None:
                    blobs[name] = fh.read()
    manifest = json.loads(blobs["manifest.json"])[0]
    config = json.loads(blobs[manifest["Config"]])
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    rows: list[LayerRow] = []
    below: set[str] = set()
    for i, layer_path in enumerate(manifest["Layers"]):
        scan = scans.get(layer_path, _LayerScan())
        while scan.link is not None:
            scan = scans.get(scan.link, _LayerScan())
        created_by = history[i].get("created_by", "") if i < len(history) else ""
        step = _step_text(created_by) if created_by else ("base image" if i == 0 else "")
        shadow = sorted((scan.files | scan.whiteouts) & below)
        rows.append(LayerRow(index=i + 1, group=_group(created_by, step) or (BASE if i == 0 else ""),
                             step=step, size_bytes=scan.size, packages=scan.packages, shadowed=len(shadow),
                             shadow_examples=shadow[:SHADOW_EXAMPLES],
                             diff_id=diff_ids[i] if i < len(diff_ids) else ""))
        below |= scan.files
    return rows
