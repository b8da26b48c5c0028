"""`dlbase bench update`: what per-group layers buy, against the single-layer design, in one run.

Two copies of the project build on the same daemon from the same base and wheels:
``layered`` (the rendered Dockerfiles: one layer per group of images/matrix.yaml `layers:`)
and ``single`` (the same template with the whole lock in one RUN: the design before). For
each design, in this order:

  cold      runtime image, no layer cache;
  warm      the same after editing a file of tests/image (cache on);
  notebook  the notebook flavor on the daemon that has the runtime image: builder bytes it adds;
  push      runtime, then notebook, to a registry of the design's own on 127.0.0.1: blob bytes
            for both vs the notebook alone (the sum of its manifest's blobs);
  update    one augmentation-group package changed in the lock (a matrix pin + re-lock, a real
            new wheel), rebuilt and pushed: new layer bytes on the builder and new blob bytes
            in the registry, against the image's size.

Before those, ``cold_rounds`` more cold builds of each design and of the naive single-stage
Dockerfile of `dlbase bench build` (same base, same wheels), the order rotating each round
and each image removed at once: one cold build per design is too noisy on a shared machine
to judge a 5% target (the same trees once gave 1.005x and 1.23x). Cold ratios are of medians.

Builder bytes are the sizes of the history steps whose intermediate image the older image
does not have; registry bytes are what the registry's blob store grew by. Builds go through
the engine directly (no version read-back or tag: both designs are measured the same way).
Everything created carries the label ``dlbase.bench=update`` and is removed at the end.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from dlbase.bench.build import SUITE_IN_COPY, copy_project, naive_build
from dlbase.bench.common import BENCH_LABEL, fill_wheelhouse, free_port, remove_images, stop_process
from dlbase.build import builder as build_mod
from dlbase.build import context as context_mod
from dlbase.build import inputs as inputs_mod
from dlbase.build import wheelhouse
from dlbase.core import yamlio
from dlbase.core.errors import DlbaseError, InvalidInput, Missing, Unreachable
from dlbase.core.fsutil import write_text_atomic
from dlbase.define.project import Project
from dlbase.define import layering
from dlbase.define import lock as lock_mod
from dlbase.define import render as render_mod
from dlbase.define.matrix import Installer, Variant
from dlbase.define.spec import INSTALL_SCRIPT_IN_IMAGE, BuildSpec, lock_spec
from dlbase.engine import Engine
from dlbase.registry import answers
from dlbase.registry.client import RegistryClient

DESIGNS = ("layered", "single")


def _notebook_of(runtime: Variant, candidate: Variant) -> bool:
    """``candidate`` is a notebook flavor (the matrix's ``jupyter: true``) built on top of
    ``runtime``: its flavor extends runtime's, on the same base, torch, wheel line and
    Python, so every layer below the flavor's own can be shared."""
    return (candidate.flavor.jupyter and candidate.flavor.extends == runtime.flavor.name
            and candidate.base.key == runtime.base.key and candidate.torch == runtime.torch
            and candidate.line == runtime.line and candidate.python == runtime.python)


def notebook_for(project: Project, spec: BuildSpec, name: str | None) -> str:
    """The notebook variant measured on top of ``spec``: ``name`` when it is one (checked
    against the matrix), else the first the matrix has. InvalidInput, naming the ones that
    would do, before anything is built."""
    fits = [v.name for v in project.matrix.variants if _notebook_of(spec.variant, v)]
    choices = f"notebook variants of {spec.name}: {', '.join(fits)}" if fits else None
    if name is None:
        if not fits:
            raise InvalidInput(f"no notebook variant extends {spec.name}'s flavor on its base, torch and line",
                               hint="name a runtime variant that has one (e.g. the matrix's default), "
                                    "or add the notebook variant to images/matrix.yaml")
        return fits[0]
    candidate = project.matrix.get(name)
    if name == spec.name:
        why = "is VARIANT itself"
    elif not candidate.flavor.jupyter:
        why = f"is not a notebook flavor (flavor '{candidate.flavor.name}' has no jupyter: true)"
    elif candidate.flavor.extends != spec.variant.flavor.name:
        why = f"does not extend {spec.name}'s flavor '{spec.variant.flavor.name}'"
    elif not _notebook_of(spec.variant, candidate):
        why = "is built on another base, torch, wheel line or Python (its layers could not be shared)"
    else:
        return name
    raise InvalidInput(f"--notebook {name} {why}",
                       hint=(choices + " (or leave --notebook out)") if choices
                       else f"{spec.name} has no notebook variant in images/matrix.yaml")
#: The package bumped for the update measure, and the version it moves to. pyyaml belongs to the
#: augmentation group (albumentations' closure) and has cp311 manylinux wheels in both versions.
UPDATE_PACKAGE = ("pyyaml", "6.0.2")


@dataclass
class DesignResult:
    design: str
    image_bytes: int = 0
    layers: int = 0
    cold_seconds: float = 0.0
    warm_seconds: float = 0.0
    notebook_image_bytes: int = 0
    notebook_added_bytes: int = 0          # builder bytes the notebook adds on a daemon with the runtime
    notebook_own_bytes: int = 0            # the notebook's own packages (its flavor layer; the env diff for single)
    registry_runtime_bytes: int = 0
    registry_runtime_notebook_bytes: int = 0
    registry_notebook_alone_bytes: int = 0
    update_builder_bytes: int = 0
    update_registry_bytes: int = 0
    update_seconds: float = 0.0
    cold_samples: list[float] = field(default_factory=list)  # every cold build of this design, in order
    notes: list[str] = field(default_factory=list)

    @property
    def cold_median(self) -> float:
        return statistics.median(self.cold_samples) if self.cold_samples else self.cold_seconds

    @property
    def ratios(self) -> dict[str, float | None]:
        def r(a: float, b: float, nd: int = 4) -> float | None:
            return round(a / b, nd) if b else None
        return {
            "update_builder_over_image": r(self.update_builder_bytes, self.image_bytes),
            "update_registry_over_image": r(self.update_registry_bytes, self.image_bytes),
            "notebook_added_over_image": r(self.notebook_added_bytes, self.image_bytes),
            "notebook_added_minus_own_over_image": r(self.notebook_added_bytes - self.notebook_own_bytes,
                                                     self.image_bytes),
            "registry_both_over_notebook_alone": r(self.registry_runtime_notebook_bytes,
                                                   self.registry_notebook_alone_bytes, 3),
            "warm_over_cold": r(self.warm_seconds, self.cold_median),
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "ratios": self.ratios}


@dataclass
class UpdateBench:
    variant: str
    notebook: str
    changed: str
    designs: dict[str, DesignResult]
    naive_samples: list[float] = field(default_factory=list)  # cold builds of the naive single-stage Dockerfile
    builder: str = "classic"  # the builder every build of the run used (engine.choose_builder's pick)

    @property
    def naive_median(self) -> float | None:
        return statistics.median(self.naive_samples) if self.naive_samples else None

    @property
    def cold_layered_over_single(self) -> float | None:
        s, la = self.designs.get("single"), self.designs.get("layered")
        return round(la.cold_median / s.cold_median, 3) if s and la and s.cold_median else None

    @property
    def cold_layered_over_naive(self) -> float | None:
        la, naive = self.designs.get("layered"), self.naive_median
        return round(la.cold_median / naive, 3) if la and naive else None

    def to_dict(self) -> dict:
        return {"variant": self.variant, "notebook": self.notebook, "changed": self.changed,
                "builder": self.builder, "cold_layered_over_single": self.cold_layered_over_single,
                "cold_layered_over_naive": self.cold_layered_over_naive,
                "naive_samples": self.naive_samples,
                "designs": {k: v.to_dict() for k, v in self.designs.items()}}


# --------------------------------------------------------------------------- registry


def _blob_bytes(storage: Path) -> int:
    blobs = storage / "docker" / "registry" / "v2" / "blobs"
    return sum(p.stat().st_size for p in blobs.rglob("data")) if blobs.is_dir() else 0


def registry_binary() -> str:
    """Debian's docker-registry, checked before the first build rather than after the cold rounds."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise Missing("docker-registry is not installed", hint="run tools/host/setup.sh (Debian: apt-get install docker-registry)")
    return binary


@contextmanager
def loopback_registry(tmp: Path) -> Iterator[tuple[str, Path]]:
    """Debian's docker-registry on a free 127.0.0.1 port with its own storage: (host, storage)."""
    binary = registry_binary()
    port = free_port()
    storage = tmp / f"registry-{port}"
    storage.mkdir(parents=True)
    config = tmp / f"registry-{port}.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    log = open(tmp / f"registry-{port}.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    client = RegistryClient(host, credentials=None, timeout=1)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except Unreachable:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise Missing(f"docker-registry did not start on {host}",
                                  details=(tmp / f"registry-{port}.log").read_text()[-1000:].splitlines())
                time.sleep(0.2)
        yield host, storage
    finally:
        stop_process(proc, timeout=10)
        log.close()


def _manifest_bytes(host: str, repo: str, tag: str) -> int:
    """Config + layer blob sizes of a pushed image: what a registry holding only it stores."""
    manifest, _digest = RegistryClient(host, credentials=None, timeout=30).manifest(repo, tag)
    where = f"{host}/{repo}:{tag}"
    if manifest.get("config") is None:
        raise DlbaseError(f"the manifest of {where} is not a single-platform image manifest",
                          details=[f"media type: {manifest.get('mediaType')}"])
    config = answers.descriptor(manifest["config"], f"{where} config")
    return int(config.get("size", 0)) + sum(int(d.get("size", 0)) for d in answers.layers(manifest, where))


# --------------------------------------------------------------------------- builder


def new_bytes(engine: Engine, image: str, older: list[str]) -> int:
    """Bytes of the history steps of ``image`` that none of ``older`` has (by intermediate image ID)."""
    have: set[str] = set()
    for ref in older:
        have |= {h["Id"] for h in engine.image_history(ref) if h.get("Id") not in (None, "<missing>")}
    return sum(int(h.get("Size", 0)) for h in engine.image_history(image)
               if h.get("Id") in (None, "<missing>") or h["Id"] not in have)


def _layer_count(engine: Engine, image: str) -> int:
    return len(engine.inspect_image(image).get("RootFS", {}).get("Layers", []))


class _Builder:
    """Builds one design's copy of the project the way `dlbase build` does, minus read-back and tags."""

    def __init__(self, copy: Project, engine: Engine, design: str, labels: dict[str, str],
                 created: list[str], say: Callable[[str], None], builder: str = "classic"):
        self.copy, self.engine, self.design, self.labels = copy, engine, design, labels
        self.created, self.say, self.builder = created, say, builder
        # One wheelhouse port for every build of the run: WHEELHOUSE is in the cache key of the
        # install steps, and the default port may be held by another build on this machine.
        self.port = free_port()

    def render(self) -> None:
        render_mod.write(self.copy)
        if self.design == "single":
            env = render_mod.environment(self.copy.templates_dir)
            for v in self.copy.matrix.variants:
                spec = BuildSpec.of(self.copy.compat, v)
                path = self.copy.variant_dir(v.name) / "Dockerfile"
                # The design before: the whole lock in one RUN, installed by the venv's pip.
                path.write_text(render_mod.dockerfile(self.copy, spec, env, single_layer=True,
                                                      installer=Installer(tool="pip")))

    def fill(self, spec: BuildSpec) -> Path:
        """The wheelhouse every build of ``spec`` serves (filled before the clock starts)."""
        return fill_wheelhouse(self.copy, spec)

    def build(self, spec: BuildSpec, *, nocache: bool) -> tuple[str, float]:
        lock_path = self.copy.variant_dir(spec.name) / "requirements.lock"
        house = self.fill(spec)
        base_ref, base_digest = build_mod.base_identity(self.engine, spec)
        made = inputs_mod.derive(self.copy, spec, lock_hash=lock_mod.lock_hash(lock_path), base_ref=base_ref,
                                 base_digest=base_digest, extra_labels=self.labels, port=self.port)
        t = time.monotonic()
        with wheelhouse.serve_preferring(house, made.wheelhouse_port) as url:
            with context_mod.staged(self.copy.root, made.dockerfile, self.copy.state_dir / "buildkit") as context:
                image_id = self.engine.build(context, made.dockerfile,
                                             buildargs=made.buildargs(url), labels=made.extra_labels,
                                             network_mode="host", nocache=nocache, builder=self.builder,
                                             source_date_epoch=made.source_date_epoch,
                                             log_path=self.copy.state_dir / f"bench-{self.design}-{spec.name}.log")
        seconds = round(time.monotonic() - t, 1)
        self.created.append(image_id)
        self.say(f"  {self.design}: built {spec.name} in {seconds:.0f}s")
        return image_id, seconds

    def push(self, image_id: str, host: str, tag: str) -> str:
        repo = f"{host}/bench-{self.design}"
        self.engine.tag(image_id, repo, tag)
        self.created.append(f"{repo}:{tag}")
        self.engine.push(repo, tag)
        return repo


def pin_in_matrix(matrix_file: Path, variant: str, package: str, version: str) -> None:
    """Pin ``package==version`` under the variant's ``packages:`` in ``matrix_file``, through
    the round-trip YAML reader (comments, layout and the variant's other pins stay)."""
    data = yamlio.load(matrix_file, round_trip=True)  # written back: keep comments
    node = next((v for v in data.get("variants") or [] if isinstance(v, dict) and v.get("name") == variant), None)
    if node is None:
        raise InvalidInput(f"cannot find variant {variant} in {matrix_file}")
    pins = node.get("packages")
    if pins is None:
        pins = node["packages"] = CommentedMap()
    elif not isinstance(pins, dict):
        raise InvalidInput(f"{matrix_file}: variant {variant}'s packages is not a mapping",
                           hint="write it as packages: {NAME: \"VERSION\"}")
    pins[package] = DoubleQuotedScalarString(version)
    yamlio.dump_atomic(data, matrix_file)


def _bump(copy: Project, spec: BuildSpec, package: str, version: str, say: Callable[[str], None]) -> None:
    """Pin ``package==version`` for the variant in the copy's matrix and re-lock it (network)."""
    pin_in_matrix(copy.matrix_file, spec.name, package, version)
    fresh = Project.discover(copy.root)
    new_spec = BuildSpec.of(fresh.compat, fresh.matrix.get(spec.name))
    say(f"re-locking {spec.name} with {package}=={version}")
    lock_mod.compile_lock(lock_spec(new_spec, layering.parent_constraints(fresh, new_spec.variant)),
                          fresh.variant_dir(spec.name) / "requirements.lock")


def run(project: Project, spec: BuildSpec, notebook: BuildSpec, engine: Engine,
        say: Callable[[str], None], designs: tuple[str, ...] = DESIGNS, cold_rounds: int = 1,
        builder: str = "auto") -> UpdateBench:
    package, version = UPDATE_PACKAGE
    chosen = engine.choose_builder(builder).name
    assignment = layering.variant_assignment(project.matrix, spec.variant,
                                             project.variant_dir(spec.name) / "requirements.lock")
    if assignment is None:
        raise Missing(f"{spec.name} has no lock", hint=f"dlbase lock {spec.name}")
    group = assignment.group_of(package)
    if group is None:
        raise InvalidInput(f"{package} is not in the lock of {spec.name}: the update measure bumps it",
                           hint="measure a variant whose lock has it (the matrix's default has)")
    current = next(p.version for g in assignment.groups for p in g.packages if p.key == package)
    if current == version:
        raise InvalidInput(f"{spec.name} already pins {package}=={version}")
    registry_binary()
    labels = {BENCH_LABEL: "update"}
    results: dict[str, DesignResult] = {}
    with tempfile.TemporaryDirectory(prefix="dlbase-bench-update-") as tmp_s:
        samples = cold_builds(project, spec, engine, Path(tmp_s) / "cold", labels, designs, cold_rounds, say,
                              builder=chosen)
        for design in designs:
            # One design at a time, cleaned up before the next: two sets of 6 GB images and
            # pushed blobs at once would not fit beside everything else on a builder.
            created: list[str] = []
            tmp = Path(tmp_s) / design
            try:
                with loopback_registry(tmp.parent) as (host, storage):
                    results[design] = _one_design(project, spec, notebook, engine, design, tmp, labels, created,
                                                  host, storage, group, current, say, builder=chosen)
            finally:
                remove_images(engine, created)
                for old_storage in Path(tmp_s).glob("registry-*"):
                    shutil.rmtree(old_storage, ignore_errors=True)
    for design, res in results.items():
        res.cold_samples = [*samples.get(design, []), res.cold_seconds]  # the rounds ran first
    return UpdateBench(variant=spec.name, notebook=notebook.name, changed=f"{package} {current} -> {version}",
                       designs=results, naive_samples=samples.get("naive", []), builder=chosen)


def cold_builds(project: Project, spec: BuildSpec, engine: Engine, tmp: Path, labels: dict[str, str],
                designs: tuple[str, ...], rounds: int, say: Callable[[str], None],
                builder: str = "classic") -> dict[str, list[float]]:
    """``rounds`` cold builds of each design and of the naive Dockerfile, the order rotating
    each round (so neither side always runs first on a warmed page cache), each image
    removed as soon as it is timed. Returns the seconds per design, in build order."""
    samples: dict[str, list[float]] = {}
    if rounds <= 0:
        return samples
    created: list[str] = []  # the image being timed; removed right after
    builders = {d: _Builder(copy_project(project, tmp / d), engine, d, labels, created, say, builder)
                for d in designs}
    for b in builders.values():
        b.render()
        b.fill(spec)  # also fills what the naive build serves (the wheelhouse is shared)
    naive_copy = next(iter(builders.values())).copy
    order = [*designs, "naive"]
    for r in range(rounds):
        for design in order[r % len(order):] + order[:r % len(order)]:
            say(f"cold round {r + 1}/{rounds}: {design}")
            try:
                if design == "naive":
                    image_id, seconds = naive_build(naive_copy, spec, engine, tmp / f"naive-{r}", labels,
                                                    builder=builder)
                    created.append(image_id)
                    seconds = round(seconds, 1)
                    say(f"  naive: built {spec.name} in {seconds:.0f}s")
                else:
                    _, seconds = builders[design].build(spec, nocache=True)
            finally:
                remove_images(engine, created)
                created.clear()
            samples.setdefault(design, []).append(seconds)
    return samples


def _one_design(project: Project, spec: BuildSpec, notebook: BuildSpec, engine: Engine, design: str, tmp: Path,
                labels: dict[str, str], created: list[str], host: str, storage: Path, group: str, current: str,
                say: Callable[[str], None], builder: str = "classic") -> DesignResult:
    package, version = UPDATE_PACKAGE
    res = DesignResult(design=design)
    copy = copy_project(project, tmp)
    b = _Builder(copy, engine, design, labels, created, say, builder)
    b.render()
    say(f"{design}: cold build of {spec.name} (no layer cache)")
    rt, res.cold_seconds = b.build(spec, nocache=True)
    res.image_bytes = int(engine.inspect_image(rt)["Size"])
    res.layers = _layer_count(engine, rt)

    say(f"{design}: warm rebuild after editing a file of tests/image")
    marker = copy.root / SUITE_IN_COPY / "conftest.py"
    marker.write_text(marker.read_text() + f"\n# bench: touched ({design})\n")
    rt, res.warm_seconds = b.build(spec, nocache=False)

    say(f"{design}: notebook flavor on a daemon that has the runtime image")
    nb, _ = b.build(notebook, nocache=False)
    res.notebook_image_bytes = int(engine.inspect_image(nb)["Size"])
    res.notebook_added_bytes = new_bytes(engine, nb, [rt])
    res.notebook_own_bytes = _own_bytes(engine, nb, design, res.notebook_image_bytes - res.image_bytes,
                                        flavor_layer_files(b.copy, notebook))

    say(f"{design}: pushing runtime, then notebook, to {host}")
    before = _blob_bytes(storage)
    b.push(rt, host, "runtime")
    res.registry_runtime_bytes = _blob_bytes(storage) - before
    repo = b.push(nb, host, "notebook")
    res.registry_runtime_notebook_bytes = _blob_bytes(storage) - before
    res.registry_notebook_alone_bytes = _manifest_bytes(host, repo.split("/", 1)[1], "notebook")

    say(f"{design}: {package} {current} -> {version} (group '{group}'), rebuild, push")
    _bump(copy, spec, package, version, say)
    b.copy = Project.discover(copy.root)
    b.render()
    rt2, res.update_seconds = b.build(spec, nocache=False)
    res.update_builder_bytes = new_bytes(engine, rt2, [rt])
    before = _blob_bytes(storage)
    b.push(rt2, host, "runtime-updated")
    res.update_registry_bytes = _blob_bytes(storage) - before
    return res


def flavor_layer_files(project: Project, spec: BuildSpec) -> tuple[str, ...]:
    """Where, in the image, the subsets of ``spec``'s own groups (the matrix's ``flavor: true``
    rules) are: the install steps that name one of them hold the flavor's own packages."""
    own = {rule.name for rule in project.matrix.layers if rule.flavor}
    found = layering.variant_assignment(project.matrix, spec.variant,
                                        project.variant_dir(spec.name) / "requirements.lock")
    return tuple(g.in_image for g in (found.groups if found else []) if g.name in own)


def _own_bytes(engine: Engine, image: str, design: str, fallback: int, own_files: tuple[str, ...]) -> int:
    """The notebook's own packages: its flavor layers (layered), or the size difference of the
    two images (single: there is no layer of its own to point at)."""
    if design != "layered":
        return max(fallback, 0)
    return sum(int(h.get("Size", 0)) for h in engine.image_history(image)
               if INSTALL_SCRIPT_IN_IMAGE in (step := h.get("CreatedBy", ""))
               and any(step.rstrip().endswith(f) or f"{f} " in step for f in own_files))


def write(bench: UpdateBench, out_dir: Path) -> tuple[Path, Path, str]:
    """JSON + markdown table (+ an SVG bar chart, no plotting dependency); returns paths and table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jpath = out_dir / f"update-{stamp}.json"
    write_text_atomic(jpath, json.dumps({"kind": "dlbase.bench.update", "time": stamp, **bench.to_dict()}, indent=2) + "\n")
    d = bench.designs
    cols = [k for k in ("single", "layered") if k in d]
    gb = lambda b: f"{b / 1e9:.3f} GB"  # noqa: E731
    pct = lambda x: "n/a" if x is None else f"{100 * x:.2f}%"  # noqa: E731
    rows = [
        ("image size (runtime)", [gb(d[c].image_bytes) for c in cols], "", ""),
        ("layers", [str(d[c].layers) for c in cols], "", ""),
        (f"(a) update {bench.changed}: new builder bytes", [gb(d[c].update_builder_bytes) for c in cols], "", ""),
        ("(a) ... as share of the image", [pct(d[c].ratios["update_builder_over_image"]) for c in cols], "<= 2%", "97%"),
        ("(a) update: new registry blob bytes", [gb(d[c].update_registry_bytes) for c in cols], "", ""),
        ("(a) ... as share of the image", [pct(d[c].ratios["update_registry_over_image"]) for c in cols], "<= 2%", "97%"),
        ("(b) notebook on a daemon with runtime: bytes added", [gb(d[c].notebook_added_bytes) for c in cols], "", ""),
        ("(b) ... its own packages", [gb(d[c].notebook_own_bytes) for c in cols], "", ""),
        ("(b) (added - own) / image", [pct(d[c].ratios["notebook_added_minus_own_over_image"]) for c in cols],
         "<= 1%", "~97%"),
        ("(c) registry: runtime + notebook", [gb(d[c].registry_runtime_notebook_bytes) for c in cols], "", ""),
        ("(c) registry: notebook alone", [gb(d[c].registry_notebook_alone_bytes) for c in cols], "", ""),
        ("(c) ratio", [str(d[c].ratios["registry_both_over_notebook_alone"]) for c in cols], "<= 1.15", "1.97"),
        ("(d) cold build: median", [f"{d[c].cold_median:.1f} s" for c in cols],
         f"layered/single <= 1.05 (here {bench.cold_layered_over_single})", ""),
        ("(d) ... every cold build, in order", [", ".join(f"{x:.1f}" for x in d[c].cold_samples) for c in cols], "", ""),
        ("(e) naive single-stage cold build: median (all)",
         [f"{bench.naive_median:.1f} s ({', '.join(f'{x:.1f}' for x in bench.naive_samples)})"
          if bench.naive_samples else "not run"] * len(cols), "", ""),
        ("(e) stretch: layered cold / naive cold", [str(bench.cold_layered_over_naive)] * len(cols), "<= 0.7", "0.92"),
        ("(d) warm rebuild (tests/image edited)", [f"{d[c].warm_seconds:.1f} s" for c in cols], "", ""),
        ("(d) warm / cold", [pct(d[c].ratios["warm_over_cold"]) for c in cols], "<= 3%", "4.75%"),
    ]
    head = "| measure | " + " | ".join(cols) + " | target | measured before |\n"
    table = head + "|---|" + "---|" * len(cols) + "---|---|\n" + "".join(
        f"| {name} | " + " | ".join(vals) + f" | {target} | {base} |\n" for name, vals, target, base in rows)
    mpath = out_dir / f"update-{stamp}.md"
    write_text_atomic(mpath, f"# dlbase bench update: {bench.variant} + {bench.notebook} ({stamp})\n\n{table}")
    svg = _svg(bench, cols)
    write_text_atomic(out_dir / f"update-{stamp}.svg", svg)
    return jpath, mpath, table


def _svg(bench: UpdateBench, cols: list[str]) -> str:
    """Bars of the bytes each design ships for the three sharing measures (GB)."""
    measures = [("update: registry", "update_registry_bytes"), ("notebook: added", "notebook_added_bytes"),
                ("registry rt+nb", "registry_runtime_notebook_bytes")]
    top = max((getattr(bench.designs[c], attr) for c in cols for _, attr in measures), default=1) or 1
    colors = {"single": "#c0504d", "layered": "#4f81bd"}
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="520" height="220" font-family="sans-serif" font-size="11">']
    for i, (label, attr) in enumerate(measures):
        y = 20 + i * 65
        parts.append(f'<text x="5" y="{y + 12}">{label}</text>')
        for j, c in enumerate(cols):
            v = getattr(bench.designs[c], attr)
            w = max(1, int(360 * v / top))
            parts.append(f'<rect x="140" y="{y + j * 20}" width="{w}" height="16" fill="{colors.get(c, "#888")}"/>')
            parts.append(f'<text x="{145 + w}" y="{y + j * 20 + 12}">{c} {v / 1e9:.2f} GB</text>')
    # Cold build seconds (medians): the naive Dockerfile, the design before, the layered one.
    times = [("naive", bench.naive_median)] + [(c, bench.designs[c].cold_median) for c in cols]
    times = [(k, v) for k, v in times if v]
    slowest = max((v for _, v in times), default=1) or 1
    y = 20 + len(measures) * 65
    parts.append(f'<text x="5" y="{y + 12}">cold build (s)</text>')
    for j, (k, v) in enumerate(times):
        w = max(1, int(360 * v / slowest))
        parts.append(f'<rect x="140" y="{y + j * 20}" width="{w}" height="16" fill="{colors.get(k, "#9bbb59")}"/>')
        parts.append(f'<text x="{145 + w}" y="{y + j * 20 + 12}">{k} {v:.1f} s</text>')
    parts.append("</svg>")
    parts[0] = parts[0].replace('height="220"', f'height="{y + 20 * len(times) + 15}"')
    return "\n".join(parts) + "\n"
