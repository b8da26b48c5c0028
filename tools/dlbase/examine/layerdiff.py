"""Where two builds of one image differ: the layer, the step that made it, the files, and why.

Why this exists: with BuildKit and ``SOURCE_DATE_EPOCH`` two clean builds of one commit
give one manifest digest, so `rebuild-check` compares digests first. When they differ,
"different" is not an answer: the reader needs the first layer that differs, the
Dockerfile step that made it (the image config's ``history[].created_by``), each file
in it that differs with the reason (content, mode, mtime, owner, link target, only in
one), and for the apt layer which Debian package versions moved (the mirror changed
between the builds, or something in the templates writes a run-dependent file).

Input is an OCI image layout as a tar stream -- the archive `docker buildx build
--output type=oci` writes, or what `docker save` streams under the containerd image
store -- read once, front to back: the blob order in the tar is not known, so every
blob is read as it passes (small ones kept as JSON if they are JSON, the rest read as
layer tars and reduced to one :class:`Entry` per path, content hashed in blocks). A 6 GB
image costs the entry table, not the bytes. Pure: no daemon here.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from dlbase.core import layerstream
from dlbase.registry import mediatypes
from dlbase.image.snapshot import compare_maps, parse_dpkg_status, tar_path

#: Blobs below this size are read into memory and tried as JSON (index, manifest, config).
JSON_BLOB_LIMIT = 16 << 20
_BLOCK = 1 << 20
DPKG_STATUS = "var/lib/dpkg/status"
INDEX_TYPES = mediatypes.INDEX_TYPES
#: Config keys compared as the layers: the layer diff reports them with reasons.
_CONFIG_SKIP = ("rootfs",)


@dataclass(frozen=True)
class Entry:
    """One path of a layer, reduced to what can differ between two builds."""

    kind: str  # file, dir, symlink, hardlink, whiteout, special
    mode: int
    owner: str  # uid:gid
    mtime: int
    size: int = 0
    sha256: str = ""
    link: str = ""

    def text(self) -> str:
        what = {"file": f"file sha256:{self.sha256[:12]} {self.size}B", "symlink": f"symlink -> {self.link}",
                "hardlink": f"hardlink -> {self.link}"}.get(self.kind, self.kind)
        return f"{what} {self.mode:04o} {self.owner} mtime={self.mtime}"


#: The reasons, in the order they are reported (the first one that applies explains most).
REASONS = ("only in build 1", "only in build 2", "type", "content", "link target", "mode", "owner", "mtime")


def reasons(a: Entry | None, b: Entry | None) -> list[str]:
    """Why two entries of one path differ; empty when they are the same."""
    if a is None or b is None:
        return [] if a is b else ["only in build 1" if b is None else "only in build 2"]
    if a.kind != b.kind:
        return ["type"]
    found = []
    if (a.sha256, a.size) != (b.sha256, b.size):
        found.append("content")
    if a.link != b.link:
        found.append("link target")
    if a.mode != b.mode:
        found.append("mode")
    if a.owner != b.owner:
        found.append("owner")
    if a.mtime != b.mtime:
        found.append("mtime")
    return found


@dataclass
class Layer:
    """One layer of an image: its blob digest, the step that made it, its entries."""

    index: int  # 1-based, lowest first
    digest: str
    step: str
    entries: dict[str, Entry] = field(default_factory=dict)
    dpkg_status: str | None = None


@dataclass
class Image:
    """An image read from an OCI layout: its manifest digest, config and layers."""

    manifest_digest: str
    config_digest: str
    config: dict[str, Any]
    layers: list[Layer]


@dataclass
class FileDiff:
    path: str
    reasons: list[str]
    a: str
    b: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LayerDiff:
    """A layer that differs: where it is, what made it, what in it differs."""

    index: int
    step: str
    digests: tuple[str, str]
    files: list[FileDiff]
    #: Debian packages (name -> version) that differ in this layer's dpkg status, when it writes one.
    debian_packages: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"index": self.index, "step": self.step, "digests": list(self.digests),
                "files": [f.to_dict() for f in self.files], "debian_packages": self.debian_packages}


@dataclass
class ImageDiff:
    """Two images compared: the digests, the config keys that differ, the layers that differ."""

    digests: tuple[str, str]
    config: list[tuple[str, Any, Any]]
    layers: list[LayerDiff]
    layer_counts: tuple[int, int]

    @property
    def identical(self) -> bool:
        return self.digests[0] == self.digests[1]

    def to_dict(self) -> dict:
        return {"digests": list(self.digests), "identical": self.identical,
                "layer_counts": list(self.layer_counts),
                "config": [{"key": k, "build_1": a, "build_2": b} for k, a, b in self.config],
                "layers": [layer.to_dict() for layer in self.layers]}


# --------------------------------------------------------------------------- reading


def entry_of(member: tarfile.TarInfo, handle: IO[bytes] | None) -> tuple[str, Entry]:
    """(path, Entry) of one layer member; a regular file's content is hashed from ``handle``."""
    path = tar_path(member.name)
    base = path.rsplit("/", 1)[-1]
    common = {"mode": member.mode & 0o7777, "owner": f"{member.uid}:{member.gid}", "mtime": int(member.mtime)}
    if base.startswith(".wh."):
        return path, Entry(kind="whiteout", **common)
    if member.isreg() and handle is not None:
        digest = hashlib.sha256()
        while block := handle.read(_BLOCK):
            digest.update(block)
        return path, Entry(kind="file", size=member.size, sha256=digest.hexdigest(), **common)
    if member.issym():
        return path, Entry(kind="symlink", link=member.linkname, **common)
    if member.islnk():
        return path, Entry(kind="hardlink", link=tar_path(member.linkname), **common)
    if member.isdir():
        return path, Entry(kind="dir", **common)
    return path, Entry(kind=f"special {member.type!r}", **common)


def read_layer(fileobj: IO[bytes]) -> tuple[dict[str, Entry], str | None]:
    """Every entry of a layer tar (plain, gzip or zstd), and its dpkg status text when it has one."""
    entries: dict[str, Entry] = {}
    status = None
    with tarfile.open(fileobj=layerstream.plain(fileobj), mode="r|", bufsize=_BLOCK) as tar:
        for member in tar:
            path = tar_path(member.name)
            if not path:
                continue
            handle = tar.extractfile(member) if member.isreg() else None
            if path == DPKG_STATUS and handle is not None:
                data = handle.read()
                status = data.decode("utf-8", errors="replace")
                handle = io.BytesIO(data)
            entries[path] = entry_of(member, handle)[1]
    return entries, status


def _blob_digest(name: str) -> str | None:
    parts = tar_path(name).split("/")
    return f"{parts[1]}:{parts[2]}" if len(parts) == 3 and parts[0] == "blobs" else None


def read_layout(stream: IO[bytes]) -> Image:
    """Read an OCI image layout tar stream (see the module docstring) into an :class:`Image`."""
    jsons: dict[str, Any] = {}
    layers: dict[str, tuple[dict[str, Entry], str | None]] = {}
    index: dict[str, Any] | None = None
    with tarfile.open(fileobj=stream, mode="r|", bufsize=_BLOCK) as outer:
        for member in outer:
            name = tar_path(member.name)
            if not member.isreg():
                continue
            handle = outer.extractfile(member)
            if handle is None:
                continue
            if name == "index.json":
                index = json.loads(handle.read())
                continue
            digest = _blob_digest(name)
            if digest is None:
                continue
            if member.size < JSON_BLOB_LIMIT:
                data = handle.read()
                if data[:1] == b"{":
                    try:
                        jsons[digest] = json.loads(data)
                        continue
                    except ValueError:
                        pass
                handle = io.BytesIO(data)
            try:
                layers[digest] = read_layer(handle)
            except tarfile.TarError:
                continue  # a blob that is neither JSON nor a layer (e.g. an attestation)
    if index is None:
        raise ValueError("not an OCI image layout: no index.json")
    manifest_digest, manifest = _resolve_manifest(index, jsons)
    config_digest = manifest["config"]["digest"]
    config = jsons.get(config_digest)
    if config is None:
        raise ValueError(f"the layout has no config blob {config_digest}")
    steps = [h.get("created_by", "") for h in config.get("history", []) if not h.get("empty_layer")]
    rows = []
    for i, desc in enumerate(manifest.get("layers", [])):
        entries, status = layers.get(desc["digest"], ({}, None))
        rows.append(Layer(index=i + 1, digest=desc["digest"], step=steps[i] if i < len(steps) else "",
                          entries=entries, dpkg_status=status))
    return Image(manifest_digest=manifest_digest, config_digest=config_digest, config=config, layers=rows)


def _resolve_manifest(index: dict[str, Any], jsons: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The image manifest index.json names: directly, or through an image index (linux/amd64 first)."""
    descriptors = list(index.get("manifests", []))
    while descriptors:
        desc = sorted(descriptors, key=lambda d: (d.get("platform") or {}).get("architecture") != "amd64")[0]
        body = jsons.get(desc["digest"])
        if body is None:
            raise ValueError(f"the layout has no blob {desc['digest']} that index.json names")
        if desc.get("mediaType") in INDEX_TYPES or body.get("mediaType") in INDEX_TYPES:
            descriptors = list(body.get("manifests", []))
            continue
        return desc["digest"], body
    raise ValueError("index.json names no image manifest")


# --------------------------------------------------------------------------- comparing


def compare_entries(a: dict[str, Entry], b: dict[str, Entry]) -> list[FileDiff]:
    """Every path of two layers that differs, sorted, with its reasons."""
    out = []
    for path in sorted(set(a) | set(b)):
        why = reasons(a.get(path), b.get(path))
        if why:
            out.append(FileDiff(path=path, reasons=why, a=a[path].text() if path in a else "",
                                b=b[path].text() if path in b else ""))
    return out


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A JSON value as {dotted.key: leaf}, lists by index (config.Labels.x, history.3.created)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, child in items:
        out.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return out or {prefix: value}


def compare_configs(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The image config keys whose values differ (the layers' diff_ids are the layer diff's)."""
    fa = flatten({k: v for k, v in a.items() if k not in _CONFIG_SKIP})
    fb = flatten({k: v for k, v in b.items() if k not in _CONFIG_SKIP})
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def package_changes(a: str | None, b: str | None) -> dict[str, list]:
    """Debian package versions that differ between two dpkg status files, as
    {"changed": [[name, v1, v2]], "only_in_build_1": [...], "only_in_build_2": [...]}."""
    if a is None and b is None:
        return {}
    found = compare_maps(parse_dpkg_status(a or ""), parse_dpkg_status(b or ""))
    va, vb = parse_dpkg_status(a or ""), parse_dpkg_status(b or "")
    out: dict[str, list] = {}
    if found.changed:
        out["changed"] = [[k, x, y] for k, x, y in found.changed]
    if found.removed:
        out["only_in_build_1"] = [[k, va[k]] for k in found.removed]
    if found.added:
        out["only_in_build_2"] = [[k, vb[k]] for k in found.added]
    return out


def diff_images(a: Image, b: Image) -> ImageDiff:
    """The config keys and the layers (by position) in which two images differ."""
    layers = []
    for i in range(max(len(a.layers), len(b.layers))):
        la = a.layers[i] if i < len(a.layers) else None
        lb = b.layers[i] if i < len(b.layers) else None
        if la is not None and lb is not None and la.digest == lb.digest:
            continue
        files = compare_entries(la.entries if la else {}, lb.entries if lb else {})
        debs = package_changes(la.dpkg_status if la else None, lb.dpkg_status if lb else None)
        layers.append(LayerDiff(index=i + 1, step=(la or lb).step if (la or lb) else "",  # type: ignore[union-attr]
                                digests=(la.digest if la else "", lb.digest if lb else ""),
                                files=files, debian_packages=debs))
    return ImageDiff(digests=(a.manifest_digest, b.manifest_digest), config=compare_configs(a.config, b.config),
                     layers=layers, layer_counts=(len(a.layers), len(b.layers)))


# --------------------------------------------------------------------------- explaining


def package_moves(debs: dict[str, list]) -> str:
    """"mirror moved: libssl3 3.0.15-1~deb12u1 -> 3.0.17-1~deb12u2, ..." for one layer's changes."""
    parts = [f"{name} {a} -> {b}" for name, a, b in debs.get("changed", [])]
    parts += [f"{name} {v} only in build 1" for name, v in debs.get("only_in_build_1", [])]
    parts += [f"{name} {v} only in build 2" for name, v in debs.get("only_in_build_2", [])]
    return ("mirror moved: " + ", ".join(parts)) if parts else ""


def explain(found: ImageDiff) -> list[str]:
    """One line per differing layer (and one for the config), first cause first, for the
    error message: where it differs and why, not just "different"."""
    lines = []
    for layer in found.layers:
        counts: dict[str, int] = {}
        for f in layer.files:
            for why in f.reasons:
                counts[why] = counts.get(why, 0) + 1
        why = ", ".join(f"{k}: {counts[k]}" for k in REASONS if k in counts)
        moved = package_moves(layer.debian_packages)
        lines.append(f"layer {layer.index} ({short_step(layer.step)}): {len(layer.files)} file(s) differ"
                     + (f" ({why})" if why else "") + (f"; {moved}" if moved else ""))
    config = [k for k, _a, _b in found.config if not k.startswith("history.")]
    history = [k for k, _a, _b in found.config if k.startswith("history.")]
    if config:
        lines.append("image config: " + ", ".join(config[:8]) + (" ..." if len(config) > 8 else ""))
    if history:
        lines.append(f"build history: {len(history)} step record(s) differ (a build argument, e.g. the "
                     "wheelhouse URL's port, or a step's text)")
    return lines


def short_step(created_by: str, width: int = 70) -> str:
    """A history entry without BuildKit's "|N ARG=..." prefix, shell and "# buildkit" suffix."""
    text = " ".join(created_by.removesuffix(" # buildkit").split())
    text = re.sub(r"^RUN \|\d+ (?:\S+=\S* )*", "RUN ", text)
    text = re.sub(r"^RUN /bin/(?:ba)?sh (?:-o pipefail )?-c ", "RUN ", text)
    return text if len(text) <= width else text[:width - 3] + "..."
