"""`dlbase bench compression IMAGE`: gzip against zstd layers, side by side in one run.

The image is pushed twice to one registry of the bench's own on 127.0.0.1, under two
repositories, ``bench-gzip`` and ``bench-zstd``: the side of the image's own layers (its
``dlbase.layer-compression``) as `dlbase push` sends it, the daemon pushing the bytes that
were built; the other side either from ``other`` (the same variant built with the other
compression, `dlbase build` of a copy whose line says so: then both are pushes of built
bytes, what the "push seconds zstd/gzip" goal compares) or, without it, converted as
`dlbase push --compression` does (the same modules: re-encoded from `docker save` on every
core, uploaded by the registry client). For each:

  registry bytes   the config and layer sizes its manifest names (what a registry holding
                   only this image stores), and what the registry's blob store grew by;
  push seconds     the push (for a converted side: re-encoding included);
  pull seconds     a cold pull-and-unpack (every blob fetched, every layer unpacked into
                   overlayfs) in a private containerd (:mod:`.cold_pull`: why not the
                   shared daemon), ``rounds`` times, the order alternating each round.

Nothing is built and no image is created: the daemon only gets a registry-qualified tag
for the gzip push, removed on every path out; the registry and the containerd are
stopped and their folders removed at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from dlbase.bench import cold_pull
from dlbase.bench.update import _blob_bytes, _manifest_bytes, loopback_registry, registry_binary
from dlbase.core import layercompression
from dlbase.core.imageref import labels_of
from dlbase.core.errors import InvalidInput, RegistryError
from dlbase.core.fsutil import write_text_atomic
from dlbase.define.project import Project
from dlbase.engine import Engine
from dlbase.image.local_image import locate
from dlbase.publish import blob_upload, compression, layer_convert
from dlbase.registry.client import RegistryClient
from dlbase.define import labels as image_labels
from dlbase.registry import mediatypes

TAG = "bench"


@dataclass
class Side:
    """One compression's numbers."""

    compression: str
    reference: str
    digest: str
    registry_bytes: int
    blob_store_growth_bytes: int
    push_seconds: float
    layer_media_types: list[str]
    pull_seconds: list[float] = field(default_factory=list)
    converted: bool = False  # pushed by converting the other side's image, not as built

    @property
    def pull_median(self) -> float:
        return round(statistics.median(self.pull_seconds), 2) if self.pull_seconds else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "pull_median_seconds": self.pull_median}


@dataclass
class CompressionBench:
    image: str
    image_id: str
    variant: str | None
    image_bytes: int
    layers: int
    zstd_level: int
    rounds: int
    measured_at: str
    sides: dict[str, Side] = field(default_factory=dict)

    def ratio(self, attr: str) -> float | None:
        g, z = self.sides[compression.GZIP], self.sides[compression.ZSTD]
        a, b = getattr(z, attr), getattr(g, attr)
        return round(a / b, 3) if b else None

    def to_dict(self) -> dict:
        return {"kind": "dlbase.bench.compression", "image": self.image, "image_id": self.image_id,
                "variant": self.variant, "image_bytes": self.image_bytes, "layers": self.layers,
                "zstd_level": self.zstd_level, "rounds": self.rounds, "measured_at": self.measured_at,
                "zstd_over_gzip": {"registry_bytes": self.ratio("registry_bytes"),
                                   "pull_seconds": self.ratio("pull_median"),
                                   "push_seconds": self.ratio("push_seconds")},
                "sides": {k: v.to_dict() for k, v in self.sides.items()}}


def _push_built(engine: Engine, image_id: str, host: str, kind: str) -> tuple[str, float]:
    """`docker push` of the image as built (what `dlbase push` does for its own compression)."""
    repo = f"{host}/bench-{kind}"
    engine.tag(image_id, repo, TAG)
    try:
        pushed = engine.push(repo, TAG)
    finally:
        with contextlib.suppress(Exception):
            engine.untag(repo, TAG)
    return pushed.digest, pushed.seconds


def _push_converted(engine: Engine, image_id: str, host: str, work: Path, kind: str,
                    say: Callable[[str], None]) -> tuple[str, float]:
    client = RegistryClient(host, timeout=60)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="convert-", dir=work) as tmp:
        converted = layer_convert.convert(engine, image_id, Path(tmp), kind)
        say(f"  converted {len(converted.layers)} layers to {kind} in {time.monotonic() - started:.1f} s; uploading")
        blob_upload.upload_blobs(client, f"bench-{kind}", converted)
        client.put_manifest(f"bench-{kind}", TAG, converted.manifest_bytes, mediatypes.OCI_MANIFEST)
    return converted.digest, round(time.monotonic() - started, 3)


def _own(info: dict) -> str:
    return layercompression.of_labels(labels_of(info))


def run(project: Project, engine: Engine, target: str, *, rounds: int = 2,
        say: Callable[[str], None] = lambda _m: None, other: str | None = None) -> CompressionBench:
    """Push ``target`` both ways, measure, and clean up (see the module's docstring)."""
    registry_binary()
    cold_pull.tools()  # missing tools: before minutes of pushing
    found = locate(project, engine, target, hint=f"build it first (`dlbase build {target}`)")
    info = found.inspect
    built = {_own(info): info["Id"]}
    if other is not None:
        second = locate(project, engine, other, hint="build the variant with the other compression first").inspect
        if _own(second) in built:
            raise InvalidInput(f"{other} has {_own(second)} layers, as {target} has: --other must be the other "
                               "compression's build", hint="build a copy of the variant whose line says the other one")
        if second.get("RootFS", {}).get("Layers") != info.get("RootFS", {}).get("Layers"):
            raise InvalidInput(f"{other} holds other layers than {target} (another build, not the same image "
                               "with the other compression)", hint="build both from one commit and one lock")
        built[_own(second)] = second["Id"]
    bench = CompressionBench(image=target, image_id=info["Id"], variant=found.labels.get(image_labels.VARIANT),
                             image_bytes=int(info.get("Size", 0)), layers=len(info.get("RootFS", {}).get("Layers", [])),
                             zstd_level=compression.ZSTD_LEVEL, rounds=rounds,
                             measured_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    work = project.state_dir / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-compression-", dir=work) as tmp_s:
        tmp = Path(tmp_s)
        with loopback_registry(tmp) as (host, storage):
            client = RegistryClient(host, timeout=60)
            for kind in compression.CHOICES:
                say(f"pushing {target} with {kind} layers to {host}/bench-{kind}")
                grown = _blob_bytes(storage)
                digest, seconds = (_push_built(engine, built[kind], host, kind) if kind in built
                                   else _push_converted(engine, bench.image_id, host, tmp, kind, say))
                manifest, served = client.manifest(f"bench-{kind}", TAG)
                if served != digest:
                    raise RegistryError(f"{host}/bench-{kind}:{TAG} serves {served}, the push wrote {digest}")
                bench.sides[kind] = Side(
                    compression=kind, reference=f"{host}/bench-{kind}@{served}", digest=served,
                    registry_bytes=_manifest_bytes(host, f"bench-{kind}", TAG),
                    blob_store_growth_bytes=_blob_bytes(storage) - grown, push_seconds=seconds,
                    layer_media_types=sorted({str(d.get("mediaType")) for d in manifest.get("layers") or []}),
                    converted=kind not in built)
            with cold_pull.private_containerd(tmp) as ctd:
                for i in range(rounds):
                    order = list(compression.CHOICES) if i % 2 == 0 else list(reversed(compression.CHOICES))
                    for kind in order:
                        seconds = ctd.pull_seconds(bench.sides[kind].reference)
                        bench.sides[kind].pull_seconds.append(seconds)
                        say(f"  round {i + 1}: cold pull of the {kind} image: {seconds:.1f} s")
    return bench


def write(bench: CompressionBench, out_dir: Path) -> tuple[Path, Path, str]:
    """The JSON and a markdown table under ``out_dir`` (compression-STAMP.*)."""
    stamp = bench.measured_at.replace(":", "").replace("-", "")[:15]
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath = out_dir / f"compression-{stamp}.json"
    write_text_atomic(jpath, json.dumps(bench.to_dict(), indent=2) + "\n")
    g, z = bench.sides[compression.GZIP], bench.sides[compression.ZSTD]

    def gb(n: float) -> str:
        return f"{n / 1e9:.3f} GB"

    rows = [
        ("registry bytes (config + layers)", gb(g.registry_bytes), gb(z.registry_bytes), bench.ratio("registry_bytes")),
        ("registry blob store grew by", gb(g.blob_store_growth_bytes), gb(z.blob_store_growth_bytes),
         bench.ratio("blob_store_growth_bytes")),
        ("cold pull + unpack: median", f"{g.pull_median:.1f} s", f"{z.pull_median:.1f} s", bench.ratio("pull_median")),
        ("... every pull, in order", ", ".join(f"{x:.1f}" for x in g.pull_seconds),
         ", ".join(f"{x:.1f}" for x in z.pull_seconds), ""),
        ("push" + "".join(f" ({side.compression}: converted, re-encoding included)" for side in (g, z)
                          if side.converted) + (" (both as built)" if not (g.converted or z.converted) else ""),
         f"{g.push_seconds:.1f} s", f"{z.push_seconds:.1f} s", bench.ratio("push_seconds")),
        ("layer media types", ", ".join(g.layer_media_types), ", ".join(z.layer_media_types), ""),
        ("manifest digest", g.digest, z.digest, ""),
    ]
    table = ("| measure | gzip | zstd | zstd / gzip |\n|---|---|---|---|\n"
             + "".join(f"| {name} | {a} | {b} | {'' if r is None else r} |\n" for name, a, b, r in rows))
    head = (f"# dlbase bench compression: {bench.image} ({stamp})\n\n"
            f"image {bench.image_id[:19]}, {bench.layers} layers, {gb(bench.image_bytes)} as the daemon counts it; "
            f"zstd level {bench.zstd_level}; {bench.rounds} cold pull(s) of each in a private containerd\n\n")
    mpath = out_dir / f"compression-{stamp}.md"
    write_text_atomic(mpath, head + table)
    return jpath, mpath, table
