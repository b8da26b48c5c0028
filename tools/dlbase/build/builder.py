"""Building one variant: lock -> wheelhouse -> docker build -> read back -> tag -> report.

The order is the point. Nothing is tagged until the versions read from *inside* the
built image equal what the variant promises, so a tag can never name a broken or
mislabelled image; and every input that decides the image's content (lock, base, the
rendered Dockerfile) is checked before the daemon is asked to do hours of work.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from dlbase.define import layering
from dlbase.define import tags
from dlbase.build import context as context_mod
from dlbase.build import inputs as inputs_mod
from dlbase.build import wheelhouse
from dlbase.examine import report as report_mod
from dlbase.define import lock as lock_mod
from dlbase.define import render as render_mod
from dlbase.engine import BUILD_ID_LABEL, BuildEvent, Engine
from dlbase.engine.buildstream import hash_mismatch
from dlbase.core import layercompression, reference
from dlbase.core.fsutil import write_json_atomic
from dlbase.core.errors import BuildFailed, Drift, ImageMismatch, InvalidInput, Missing
from dlbase.core.imageref import labels_of, short_id
from dlbase.define.project import Project
from dlbase.image.readback import read_back
from dlbase.define.spec import INSTALLER_LOCK, LOCK_PLATFORM, BuildSpec, installer_lock_spec, lock_spec


@dataclass
class BuildResult:
    variant: str
    image_id: str
    immutable_tag: str
    moving_tag: str
    tags: list[str]
    lock_hash: str
    base_ref: str
    base_digest: str
    seconds: float
    size_bytes: int
    log_file: str
    probe: dict = field(default_factory=dict)
    report_file: str | None = None
    builder: dict = field(default_factory=dict)  # BuilderChoice.to_dict(): which builder ran, and why
    source_date_epoch: int | None = None
    revision: str | None = None
    #: The port the wheelhouse was served on: its URL is a build argument, so part of the digest.
    wheelhouse_port: int | None = None
    compression: str = layercompression.GZIP  # the layers' encoding the image was written with

    def to_dict(self) -> dict:
        return asdict(self)


def cudnn_int(version: str) -> int:
    """cuDNN's own integer encoding, as torch.backends.cudnn.version() returns it.

    cuDNN 9 encodes major*10000 + minor*100 + patch (9.1.0 -> 90100); cuDNN 8 used
    major*1000 + minor*100 + patch (8.9.7 -> 8907).
    """
    major, minor, patch = (int(p) for p in version.split(".")[:3])
    return major * (10000 if major >= 9 else 1000) + minor * 100 + patch


def compare(spec: BuildSpec, probe: dict) -> list[str]:
    """Every way the image differs from the variant; empty when it is what it says."""
    want = spec.versions()
    problems = []
    for key in ("torch", "torchvision", "cuda", "python", "albumentations", "opencv", "numpy"):
        if want.get(key) is not None and probe.get(key) != want[key]:
            problems.append(f"{key}: image has {probe.get(key)!r}, variant says {want[key]!r}")
    expected_cudnn = cudnn_int(spec.line.cudnn)
    if probe.get("cudnn_int") is not None:
        if probe["cudnn_int"] != expected_cudnn:
            problems.append(f"cudnn: image reports {probe['cudnn_int']}, the {spec.line.name} line brings "
                            f"{spec.line.cudnn} ({expected_cudnn})")
    else:
        wheel = probe.get("cudnn_wheel") or probe.get("cudnn_wheel_cu11")
        if wheel != spec.line.cudnn:
            problems.append(f"cudnn: image has cuDNN wheel {wheel!r}, the line brings {spec.line.cudnn}")
    for extra in ("opencv_gui", "opencv_contrib"):
        if probe.get(extra):
            problems.append(f"{extra}: a second OpenCV ({probe[extra]}) is installed beside the headless one")
    for err in ("torch_error", "cv2_error"):
        if probe.get(err):
            problems.append(f"{err.split('_')[0]} does not import: {probe[err]}")
    return problems


@contextlib.contextmanager
def exclusive(project: Project, name: str, say: Callable[[str], None]) -> Iterator[None]:
    """One build of a variant at a time on this machine; a second one waits its turn
    instead of racing for the same tags and wheelhouse."""
    lock_dir = project.state_dir / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another build of {name} is running on this machine; waiting for it to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def base_identity(engine: Engine, spec: BuildSpec) -> tuple[str, str]:
    """(reference, digest) of the base. A bootstrapped base must exist locally; its
    image ID is its digest. A registry base is named by its pinned digest."""
    base = spec.variant.base
    if base.source == "bootstrap":
        if not engine.image_exists(base.tag_ref):
            raise Missing(f"base image {base.tag_ref} is not on this daemon",
                          hint="run `dlbase base bootstrap` (or `make base`) first")
        return base.tag_ref, engine.inspect_image(base.tag_ref)["Id"]
    return base.tag_ref, base.digest or "unpinned"


def layer_compression(spec: BuildSpec, builder_name: str, say: Callable[[str], None],
                      wanted: str | None = None) -> str:
    """The encoding this build writes: ``wanted`` (a bench's side by side), else its
    line's (images/matrix.yaml ``compression:``),
    except gzip with the classic builder, which writes nothing else (said, not refused:
    the classic builder is what `auto` takes on a daemon without the containerd store,
    and a gzip image is one every client pulls; `dlbase push` then sends it as gzip)."""
    wanted = wanted or spec.variant.compression
    if builder_name == "classic" and wanted != layercompression.GZIP:
        say(f"notice: line {spec.line.name} publishes {wanted} layers, but the classic builder writes gzip only: "
            "this image's layers are gzip (build with BuildKit, `--builder buildkit`, for zstd)")
        return layercompression.GZIP
    return wanted


def preflight(project: Project, spec: BuildSpec) -> Path:
    """Checks that need no daemon: the Dockerfile is current and the lock is fresh."""
    dockerfile = project.variant_dir(spec.name) / "Dockerfile"
    expected = render_mod.dockerfile(project, spec, render_mod.environment(project.templates_dir))
    if not dockerfile.is_file() or dockerfile.read_text(encoding="utf-8") != expected:
        raise Drift(f"{project.rel(dockerfile)} is missing or differs from the templates",
                    hint="run `dlbase render` (and commit the result)")
    lock_path = project.variant_dir(spec.name) / "requirements.lock"
    lock_mod.check_lock(lock_spec(spec, layering.parent_constraints(project, spec.variant)), lock_path)
    for out in render_mod.subset_outputs(project, spec):
        if not out.path.is_file() or out.path.read_text(encoding="utf-8") != out.content:
            raise Drift(f"{project.rel(out.path)} is missing or differs from {project.rel(lock_path)}",
                        hint="run `dlbase render` (and commit the result)")
    installer = installer_lock_spec(project.matrix)
    if installer is not None:
        lock_mod.check_lock(installer, project.root / INSTALLER_LOCK)
    return lock_path


def fill_wheelhouse(project: Project, spec: BuildSpec, lock_path: Path, house: Path,
                    on_event: Callable[[wheelhouse.FillEvent], None] | None = None) -> None:
    """Every wheel the build installs: the variant's lock and, when the installer is uv, the
    uv wheel each layer RUN fetches (images/_build/installer.lock)."""
    tags = wheelhouse.platform_tags_for(LOCK_PLATFORM)
    wheelhouse.fill(lock_path, house, python_version=spec.variant.python, platform_tags=tags, on_event=on_event)
    if installer_lock_spec(project.matrix) is not None:
        wheelhouse.fill(project.root / INSTALLER_LOCK, house, python_version=spec.variant.python,
                        platform_tags=tags, on_event=on_event)


def build(project: Project, spec: BuildSpec, engine: Engine, *,
          on_event: Callable[[BuildEvent | wheelhouse.FillEvent], None] | None = None,
          say: Callable[[str], None] = lambda _m: None,
          nocache: bool = False, extra_labels: dict[str, str] | None = None,
          wheelhouse_port: int | None = None, tag: bool = True, check_versions: bool = True,
          wheelhouse_dir: Path | None = None, repository: str | None = None,
          cache_from: list[str] | None = None, builder: str = "auto",
          cache_to: str | None = None, compression: str | None = None) -> BuildResult:
    """Build, read back, compare, tag, report. Raises a typed error at the first problem;
    nothing is tagged unless every check passed. ``on_event`` receives the wheelhouse's
    FillEvents, then the build's BuildEvents; ``say`` receives one-line messages.

    ``check_versions=False`` (only with ``tag=False``) skips reading the versions back: for
    builds that are compared, never tagged (`dlbase rebuild-check`), including test
    images without torch. The tag names in the result are then derived from the variant.

    ``wheelhouse_dir`` serves that folder as it is (a wheelhouse prepared elsewhere, e.g.
    carried to an air-gapped builder) instead of filling the default one: nothing is
    downloaded or pre-checked, and pip's ``--require-hashes`` in the Dockerfile is then
    the check that every wheel is the one the lock pins.

    ``cache_from``: with the classic builder, images (pulled when not on the daemon) whose
    layers it may reuse; with BuildKit, registry caches (``HOST/REPO:cache``) to import.
    ``cache_to`` (BuildKit only): the registry cache to export, so an empty CI daemon
    rebuilds only the layer groups that changed.

    ``builder``: "auto" (BuildKit where buildx and the containerd store are there),
    "buildkit" or "classic"; the choice and its reason are said and recorded in the result.
    ``compression``: the layers' encoding instead of the line's (`dlbase bench build`
    measures both side by side); None: the line's.
    """
    if not check_versions and tag:
        raise ValueError("an image is tagged only after its versions were read back")
    started = time.monotonic()
    lock_path = preflight(project, spec)
    lock_hash = lock_mod.lock_hash(lock_path)
    engine.ping()
    choice = engine.choose_builder(builder)
    if cache_to and choice.name != "buildkit":
        raise InvalidInput(f"--cache-to needs BuildKit, and this build uses the classic builder ({choice.reason})",
                           hint="build with `--builder buildkit`, or leave --cache-to out")
    if cache_from and choice.name == "classic" and engine.containerd_store():
        # Docker 26.1's classic builder cannot restore a pulled image as cache on the containerd
        # store ("failed to restore cached image ... failed to read diff archive"), measured here.
        raise InvalidInput("the classic builder cannot use --cache-from images on this daemon's containerd "
                           "image store (Docker 26 refuses to restore them as cache)",
                           hint="build with BuildKit and a registry cache: `--cache-to REG/REPO:cache` once, "
                                "then `--cache-from REG/REPO:cache`")
    say(f"builder: {choice.name} ({choice.reason})")
    encoding = layer_compression(spec, choice.name, say, compression)
    with exclusive(project, spec.name, say):
        base_ref, base_digest = base_identity(engine, spec)
        inputs = inputs_mod.derive(project, spec, lock_hash=lock_hash, base_ref=base_ref, base_digest=base_digest,
                                  extra_labels={**(extra_labels or {}), layercompression.LABEL: encoding},
                                  port=wheelhouse_port)
        if wheelhouse_dir is not None:
            house = Path(wheelhouse_dir)
            if not house.is_dir():
                raise Missing(f"wheelhouse {house} is not a directory",
                              hint="pass a folder of wheels, or leave --wheelhouse out to fill the default one")
            say(f"wheelhouse {house}: served as given (pip checks every wheel against the lock's hashes)")
        else:
            house = wheelhouse.default_wheelhouse(spec.variant.python, LOCK_PLATFORM, root=project.root)
            say(f"wheelhouse {project.rel(house)}: checking {lock_path.name} against it")
            fill_wheelhouse(project, spec, lock_path, house, on_event=on_event)
        if choice.name == "classic":
            cache_from = cache_sources(engine, cache_from or [], say)
        log_dir = project.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        # Build-time labels reach the Dockerfile's one LABEL step as build arguments (the API's
        # labels= would add one committed step per label); only extra labels go through labels=.
        with wheelhouse.serve_preferring(house, inputs.wheelhouse_port) as url:
            served_port = served_on(url, inputs.wheelhouse_port, say)
            say(f"serving the wheelhouse at {url}; building {project.rel(project.variant_dir(spec.name))}/Dockerfile")
            try:
                with context_mod.staged(project.root, inputs.dockerfile, project.state_dir / "buildkit") as context:
                    image_id = engine.build(context, inputs.dockerfile, buildargs=inputs.buildargs(url),
                                            labels=dict(inputs.extra_labels), network_mode="host", nocache=nocache,
                                            pull=False, on_event=on_event, log_path=log_file,
                                            cache_from=list(cache_from or []) or None, builder=choice.name,
                                            cache_to=cache_to, source_date_epoch=inputs.source_date_epoch,
                                            work_dir=project.state_dir / "buildkit", compression=encoding)
            except BuildFailed as exc:
                if hash_mismatch(exc.log_tail):
                    exc.message += " (a wheel's sha256 is not one the lock pins)"
                    exc.hint = ("a served wheel differs from the one locked (tampered, corrupt or rebuilt): "
                                "remove it from the wheelhouse and build again, or re-lock with `dlbase lock`")
                raise
        if check_versions:
            say("reading the versions back from inside the image")
            try:
                probe = read_back(engine, image_id)
                problems = compare(spec, probe)
            except BaseException:
                _discard(engine, image_id)
                raise
        else:  # nothing was read back: the report says so (empty versions); tag names from the variant
            probe, problems = {}, []
        named = probe if check_versions else {k: spec.versions()[k] for k in ("torch", "cuda", "python")}
        if problems:
            _discard(engine, image_id)
            raise ImageMismatch(f"{spec.name}: the built image is not what the variant says; no tag was applied",
                                details=problems, hint="check the lock and the templates; nothing was tagged")
        immutable = tags.immutable_tag(torch=named["torch"], cuda=named["cuda"],
                                       cudnn=cudnn_text(probe, spec), python=named["python"],
                                       flavor=spec.variant.flavor.name, os_name=spec.variant.base.os,
                                       lock_hash=lock_hash)
        moving = spec.moving_tag  # torch's major.minor: compare() made the image's equal the variant's
        repo = repository or project.matrix.repository
        applied = []
        if tag:
            for t in (immutable, moving):
                applied.append(engine.tag(image_id, repo, t))
        size = int(engine.inspect_image(image_id).get("Size", 0))
        result = BuildResult(variant=spec.name, image_id=image_id, immutable_tag=f"{repo}:{immutable}",
                             moving_tag=f"{repo}:{moving}", tags=applied, lock_hash=lock_hash,
                             base_ref=base_ref, base_digest=base_digest,
                             seconds=round(time.monotonic() - started, 1), size_bytes=size,
                             log_file=str(log_file), probe=probe, builder=choice.to_dict(),
                             source_date_epoch=inputs.source_date_epoch, revision=inputs.revision,
                             wheelhouse_port=served_port, compression=encoding)
        result.report_file = str(write_report(project, result, spec))
        return result


def served_on(url: str, asked: int, say: Callable[[str], None]) -> int:
    """The port ``url`` serves on; said when it is not the one asked for (another build holds
    that one): the URL is a build argument, so this image's digest is not the one a build
    served on ``asked`` gives, and `rebuild-check` of it gives another."""
    port = urllib.parse.urlsplit(url).port or asked
    if port != asked:
        say(f"port {asked} is in use (another build?): the wheelhouse is served on {port}; its URL is a build "
            f"argument, so this image's digest differs from one built with the wheelhouse on {asked}")
    return port


def split_ref(ref: str) -> tuple[str, str]:
    """``host:port/repo:tag`` or ``repo@sha256:...`` -> (repository, tag or digest); tag
    defaults to ``latest`` like docker's (the digest wins when both are given)."""
    parsed = reference.parse(ref, where="--cache-from")
    return parsed.name, parsed.digest or parsed.tag or "latest"


def cache_sources(engine: Engine, refs: list[str], say: Callable[[str], None]) -> list[str]:
    """The --cache-from images, pulled when the daemon does not have them: the classic builder
    reuses only local images' layers, so an empty CI daemon pulls the published image first."""
    found = []
    for ref in refs:
        if not engine.image_exists(ref):
            say(f"pulling {ref} to use its layers as cache")
            repo, tag_or_digest = split_ref(ref)
            engine.pull(repo, tag_or_digest)
        found.append(ref)
    return found


def cudnn_text(probe: dict, spec: BuildSpec) -> str:
    """cuDNN version for the tag, from the image: the integer torch reports, decoded
    (one place for build and bake, which both tag what they read back)."""
    value = probe.get("cudnn_int")
    if isinstance(value, int) and value >= 90000:
        return f"{value // 10000}.{value // 100 % 100}.{value % 100}"
    if isinstance(value, int) and value > 0:
        return f"{value // 1000}.{value // 100 % 10}.{value % 100}"
    return probe.get("cudnn_wheel") or probe.get("cudnn_wheel_cu11") or spec.line.cudnn


def _discard(engine: Engine, image_id: str) -> None:
    """Remove an image that failed its checks: no tag points at it, nothing keeps it,
    and no step of its build is left dangling (the containerd store keeps those)."""
    with contextlib.suppress(Exception):
        build_id = labels_of(engine.inspect_image(image_id)).get(BUILD_ID_LABEL)
        engine.remove_image(image_id, force=True)
        if build_id:
            engine.remove_build_leftovers({build_id})


def write_report(project: Project, result: BuildResult, spec: BuildSpec) -> Path:
    """The build report: what was built, from what, and what is inside (JSON)."""
    path = report_mod.reports_dir(project) / f"build-{short_id(result.image_id)}.json"
    body = {
        "kind": "dlbase.build",
        "variant": result.variant,
        "image_id": result.image_id,
        "tags": result.tags,
        "immutable_tag": result.immutable_tag,
        "moving_tag": result.moving_tag,
        "size_bytes": result.size_bytes,
        "lock_hash": result.lock_hash,
        "base": {"ref": result.base_ref, "digest": result.base_digest},
        "build_seconds": result.seconds,
        "builder": result.builder,
        "compression": result.compression,
        "source_date_epoch": result.source_date_epoch,
        "versions": {k: result.probe.get(k) for k in ("torch", "torchvision", "cuda", "cudnn_int", "nccl",
                                                       "python", "albumentations", "opencv", "numpy")},
        "packages": result.probe.get("packages", {}),
        "expected": spec.versions(),
        "log_file": result.log_file,
        "verification": None,
        "repo_digests": [],
        "sbom_file": str(report_mod.write_sbom(project, image_id=result.image_id, image_name=result.immutable_tag,
                                               packages=result.probe.get("packages") or {},
                                               variant=result.variant, lock_hash=result.lock_hash)),
    }
    return write_json_atomic(path, body)
