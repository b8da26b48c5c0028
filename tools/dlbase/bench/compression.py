"""`dlbase bench compression IMAGE`: gzip against zstd layers, side by side in one run.

The image is pushed twice to one registry of the bench's own on 127.0.0.1, under two
repositories: ``bench-gzip`` as the daemon pushes it (`docker push`), ``bench-zstd`` as
`dlbase push --compression zstd` does (the same modules: re-compressed from `docker save`,
uploaded by the registry client). For each:

  registry bytes   the config and layer sizes its manifest names (what a registry holding
                   only this image stores), and what the registry's blob store grew by;
  push seconds     the push (for zstd: re-compressing included);
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
from dlbase.core.errors import RegistryError
from dlbase.core.fsutil import write_text_atomic
from dlbase.define.project import Project
from dlbase.engine import Engine
from dlbase.image.local_image import locate
from dlbase.publish import compression, zstd_export, zstd_push
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


def _push_gzip(engine: Engine, image_id: str, host: str) -> tuple[str, float]:
    repo = f"{host}/bench-gzip"
    engine.tag(image_id, repo, TAG)
    try:
        pushed = engine.push(repo, TAG)
    finally:
        with contextlib.suppress(Exception):
            engine.untag(repo, TAG)
    return pushed.digest, pushed.seconds


def _push_zstd(engine: Engine, image_id: str, host: str, work: Path, say: Callable[[str], None]) -> tuple[str, float]:
    client = RegistryClient(host, timeout=60)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="zstd-", dir=work) as tmp:
        converted = zstd_export.convert(engine, image_id, Path(tmp))
        say(f"  re-compressed {len(converted.layers)} layers in {time.monotonic() - started:.1f} s; uploading")
        zstd_push.upload_blobs(client, "bench-zstd", converted)
        client.put_manifest("bench-zstd", TAG, converted.manifest_bytes, mediatypes.OCI_MANIFEST)
    return converted.digest, round(time.monotonic() - started, 3)


def run(project: Project, engine: Engine, target: str, *, rounds: int = 2,
        say: Callable[[str], None] = lambda _m: None) -> CompressionBench:
    """Push ``target`` both ways, measure, and clean up (see the module's docstring)."""
    registry_binary()
    cold_pull.tools()  # missing tools: before minutes of pushing
    found = locate(project, engine, target, hint=f"build it first (`dlbase build {target}`)")
    info = found.inspect
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
                digest, seconds = (_push_gzip(engine, bench.image_id, host) if kind == compression.GZIP
                                   else _push_zstd(engine, bench.image_id, host, tmp, say))
                manifest, served = client.manifest(f"bench-{kind}", TAG)
                if served != digest:
                    raise RegistryError(f"{host}/bench-{kind}:{TAG} serves {served}, the push wrote {digest}")
                bench.sides[kind] = Side(
                    compression=kind, reference=f"{host}/bench-{kind}@{served}", digest=served,
                    registry_bytes=_manifest_bytes(host, f"bench-{kind}", TAG),
                    blob_store_growth_bytes=_blob_bytes(storage) - grown, push_seconds=seconds,
                    layer_media_types=sorted({str(d.get("mediaType")) for d in manifest.get("layers") or []}))
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
        ("push (zstd: re-compressing included)", f"{g.push_seconds:.1f} s", f"{z.push_seconds:.1f} s",
         bench.ratio("push_seconds")),
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
