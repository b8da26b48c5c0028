"""Building variants with `docker buildx bake` from ci/docker-bake.hcl, with what `dlbase
build` gives a build: the wheelhouse, the build-time labels, the read-back before any tag.

Why a runner and not only the file: the file alone builds online (the Dockerfile's index)
and unlabelled, and its images carry their moving tag before anyone looked inside them.
Teams that build at scale want bake's parallel targets and its cache back-ends *and* the
images `dlbase verify` and `dlbase push` accept. So this module

- resolves the targets with bake itself (``--print``: groups as the file defines them);
- checks every input as `dlbase build` does (Dockerfile rendered, lock fresh, bake file
  current, base present), fills the wheelhouse and serves it on 127.0.0.1 at the port
  `dlbase build` uses, so the WHEELHOUSE argument (part of the install steps' cache key)
  is the same for both;
- gives the build the host network. buildx 0.13's bake has no ``network`` attribute
  (``--set *.network=host`` is refused: "unknown key"), but it merges a compose file's
  ``build.network`` into the HCL targets of the same name, so a throw-away compose file
  naming only the targets carries it;
- sets the build-time label arguments and SOURCE_DATE_EPOCH (:func:`dlbase.build.inputs.derive`,
  the one home of their values; the epoch is the commit time) per target with ``--set``;
- lets bake tag only a staging name of this run, then reads each image back, and tags it
  with its immutable and moving tags only when its versions match; on any failure (a
  step, a mismatch, Ctrl-C) every staging tag is removed, so nothing is left named.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from dlbase.build import builder, wheelhouse
from dlbase.build import inputs as inputs_mod
from dlbase.image.readback import read_back
from dlbase.core import layercompression
from dlbase.core.errors import BuildFailed, Drift, ImageMismatch, InvalidInput, Missing
from dlbase.define.project import Project
from dlbase.define import bakefile, tags
from dlbase.define import lock as lock_mod
from dlbase.define import render as render_mod
from dlbase.define.spec import LOCK_PLATFORM, BuildSpec
from dlbase.engine import Engine
from dlbase.engine.buildstream import hash_mismatch

STAGING_REPO = "dlbase-bake-staging"  # bake's only tag until the read-back passed
_TAIL = 40
_FAILED_STEP = re.compile(r"^#\d+ \[(?P<step>[^\]]+)\] (?P<text>.+)$")


@dataclass
class Target:
    """One variant of a bake run, with what its build needs and what it is tagged as first."""

    name: str  # the bake target
    spec: BuildSpec
    lock_hash: str
    base_ref: str = ""
    base_digest: str = ""
    buildargs: dict[str, str] | None = None
    wheelhouse_url: str = ""

    def staging(self, run_id: str) -> str:
        return f"{STAGING_REPO}/{self.name}:{run_id}"


# --------------------------------------------------------------------------- bake itself


def _docker() -> list[str]:
    return ["docker", "buildx", "bake"]


def require_buildx() -> str:
    """buildx's version line; Missing when there is no `docker buildx` (Debian 12's own docker)."""
    try:
        res = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Missing(f"`docker buildx` cannot be run ({exc})",
                      hint="install Docker with buildx (sudo tools/host/setup.sh), or use `dlbase build`") from None
    if res.returncode != 0:
        raise Missing("`docker buildx` is not installed", details=res.stderr.strip().splitlines()[-3:],
                      hint="install Docker with buildx (sudo tools/host/setup.sh), or use `dlbase build`")
    return res.stdout.strip()


def print_definition(project: Project, names: list[str], extra: list[str] | None = None) -> dict:
    """`docker buildx bake --print NAMES` as data: what bake would build, groups resolved."""
    cmd = [*_docker(), "-f", bakefile.BAKE_FILE, "--print", *(extra or []), *names]
    try:
        res = subprocess.run(cmd, cwd=project.root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Missing(f"`docker buildx bake` cannot be run ({exc})", hint="install Docker with buildx") from None
    if res.returncode != 0:
        lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("#")]
        if any("failed to find target" in ln for ln in lines):
            raise InvalidInput(f"{bakefile.BAKE_FILE} has no target or group {' '.join(names)!r}",
                               details=lines[-3:],
                               hint=f"name a variant (`dlbase check` lists them) or a group: {', '.join(bakefile.GROUPS)}")
        raise InvalidInput(f"`docker buildx bake --print` refused {bakefile.BAKE_FILE}", details=lines[-8:],
                           hint="run `dlbase render` (the file is generated) and try again")
    return json.loads(res.stdout)


def resolve(project: Project, names: list[str]) -> list[str]:
    """The variants bake builds for NAMES (variants, bake targets or groups; none: the
    file's default group), in the matrix's order."""
    by_target = bakefile.variant_targets([v.name for v in project.matrix.variants])
    variants = {v.name for v in project.matrix.variants}
    asked = [bakefile.target_name(n) if n in variants else n for n in names] or ["default"]
    found = print_definition(project, asked).get("target", {})
    stray = sorted(t for t in found if t not in by_target)
    if stray:
        raise Drift(f"{bakefile.BAKE_FILE} names targets the matrix has no variant for: {', '.join(stray)}",
                    hint="run `dlbase render` (and commit the result)")
    return [v.name for v in project.matrix.variants if bakefile.target_name(v.name) in found]


def check_current(project: Project) -> None:
    """The bake file is what the templates and matrix give now (it is generated)."""
    path = project.root / bakefile.BAKE_FILE
    wanted = next((o.content for o in render_mod.outputs(project) if o.path == path), None)
    if wanted is None:
        raise Missing("templates/docker-bake.hcl.j2 is missing: this project renders no bake file",
                      hint="use `dlbase build`, or restore the template")
    if not path.is_file() or path.read_text(encoding="utf-8") != wanted:
        raise Drift(f"{bakefile.BAKE_FILE} is missing or differs from the templates",
                    hint="run `dlbase render` (and commit the result)")


def host_network(targets: list[Target]) -> str:
    """A compose file that gives exactly these bake targets the host network (see module doc)."""
    lines = ["# written by `dlbase bake` for one run: buildx 0.13 bake takes the network only from compose",
             "services:"]
    for t in targets:
        lines += [f"  {t.name}:", "    build:", "      network: host"]
    return "\n".join(lines) + "\n"


def overrides(t: Target, run_id: str, *, extra_labels: dict[str, str], cache_from: list[str],
              cache_to: list[str], nocache: bool) -> list[str]:
    """The ``--set`` values of one target: staging tag, wheelhouse, label arguments, extra
    labels, cache back-ends (``{variant}``/``{target}`` in a cache spec name the target's)."""
    sets = [f"{t.name}.tags={t.staging(run_id)}", f"{t.name}.args.WHEELHOUSE={t.wheelhouse_url}"]
    sets += [f"{t.name}.args.{k}={v}" for k, v in (t.buildargs or {}).items()]
    sets += [f"{t.name}.labels.{k}={v}" for k, v in
             {**extra_labels, layercompression.LABEL: t.spec.variant.compression}.items()]
    for key, specs in (("cache-from", cache_from), ("cache-to", cache_to)):
        sets += [f"{t.name}.{key}={s.replace('{variant}', t.spec.name).replace('{target}', t.name)}" for s in specs]
    if nocache:
        sets.append(f"{t.name}.no-cache=true")
    return sets


def run_bake(cmd: list[str], *, cwd: Path, env: dict[str, str], log_file: Path,
             on_line: Callable[[str], None]) -> tuple[int, list[str]]:
    """Run bake with plain progress, every line to ``log_file`` and ``on_line``; (exit
    code, last lines). Ctrl-C / SIGTERM: bake is interrupted (it cancels the build) and
    waited for, then the interrupt goes on."""
    tail: deque[str] = deque(maxlen=_TAIL)
    with open(log_file, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", start_new_session=True)
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                log.write(line + "\n")
                tail.append(line)
                on_line(line)
            return proc.wait(), list(tail)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise


def failing_step(lines: list[str]) -> str | None:
    """The step bake reported last before its ERROR line (the one that failed)."""
    step = None
    for line in lines:
        m = _FAILED_STEP.match(line)
        if m:
            step = f"[{m['step']}] {m['text']}"
        if line.startswith("ERROR:"):
            break
    return step


# --------------------------------------------------------------------------- a run


def _drop_staging(engine: Engine, targets: list[Target], run_id: str) -> None:
    """Remove this run's staging tags (and with them images nothing else names)."""
    for t in targets:
        repo, _, tag = t.staging(run_id).rpartition(":")
        with contextlib.suppress(Exception):
            engine.untag(repo, tag)


@contextlib.contextmanager
def _served(project: Project, targets: list[Target], port: int, say: Callable[[str], None],
            on_event: Callable | None, wheelhouse_dir: Path | None) -> Iterator[None]:
    """Fill (unless given) and serve one wheelhouse per python of the targets; the first on
    ``port`` (the one `dlbase build` uses), others on free ports."""
    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        for t in targets:
            python = t.spec.variant.python
            if python not in urls:
                if wheelhouse_dir is not None:
                    house = Path(wheelhouse_dir)
                    if not house.is_dir():
                        raise Missing(f"wheelhouse {house} is not a directory",
                                      hint="pass a folder of wheels, or leave --wheelhouse out to fill the default one")
                else:
                    house = wheelhouse.default_wheelhouse(python, LOCK_PLATFORM, root=project.root)
                say(f"wheelhouse {project.rel(house)}: serving it for python {python}")
                urls[python] = stack.enter_context(wheelhouse.serve_preferring(house, port if not urls else 0))
            if wheelhouse_dir is None:
                lock_path = project.variant_dir(t.spec.name) / "requirements.lock"
                house = wheelhouse.default_wheelhouse(python, LOCK_PLATFORM, root=project.root)
                builder.fill_wheelhouse(project, t.spec, lock_path, house, on_event=on_event)
            t.wheelhouse_url = urls[python]
        yield


def bake(project: Project, engine: Engine, names: list[str], *,
         on_line: Callable[[str], None] = lambda _l: None,
         on_event: Callable | None = None,
         say: Callable[[str], None] = lambda _m: None,
         extra_labels: dict[str, str] | None = None, repository: str | None = None,
         cache_from: list[str] | None = None, cache_to: list[str] | None = None,
         nocache: bool = False, wheelhouse_port: int | None = None, wheelhouse_dir: Path | None = None,
         check_versions: bool = True, tag: bool = True) -> list[builder.BuildResult]:
    """Build NAMES with bake; read each image back and tag it (see module doc). Raises a
    typed error at the first problem, with nothing of this run left tagged.

    ``check_versions=False`` (only with ``tag=False``): the images are left as built, under
    no tag but their staging one, for callers that examine them (tests of images without
    torch); the result's ``tags`` then hold the staging reference.
    """
    if not check_versions and tag:
        raise ValueError("an image is tagged only after its versions were read back")
    started = time.monotonic()
    require_buildx()
    check_current(project)
    variants = resolve(project, names)
    targets = []
    for name in variants:
        spec = BuildSpec.of(project.compat, project.matrix.get(name))
        lock_path = builder.preflight(project, spec)
        targets.append(Target(bakefile.target_name(name), spec, lock_mod.lock_hash(lock_path)))
    engine.ping()
    zstd = [t.spec.name for t in targets if t.spec.variant.compression == layercompression.ZSTD]
    if zstd:
        engine.require_zstd(", ".join(zstd))
    run_id = uuid.uuid4().hex[:12]
    log_dir = project.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"bake-{time.strftime('%Y%m%d-%H%M%S')}-{run_id}.log"
    net_file = project.state_dir / "bake" / f"host-network-{run_id}.yml"
    port = inputs_mod.wheelhouse_port(wheelhouse_port)
    epoch = 0  # the project's one epoch, as every target's inputs say
    with contextlib.ExitStack() as stack:
        for t in targets:
            stack.enter_context(builder.exclusive(project, t.spec.name, say))
        for t in targets:
            t.base_ref, t.base_digest = builder.base_identity(engine, t.spec)
            made = inputs_mod.derive(project, t.spec, lock_hash=t.lock_hash, base_ref=t.base_ref,
                                     base_digest=t.base_digest, extra_labels=extra_labels, port=port)
            t.buildargs, epoch = made.label_args, made.source_date_epoch
        stack.enter_context(_served(project, targets, port, say, on_event, wheelhouse_dir))
        net_file.parent.mkdir(parents=True, exist_ok=True)
        net_file.write_text(host_network(targets), encoding="utf-8")
        stack.callback(net_file.unlink, missing_ok=True)
        cmd = [*_docker(), "-f", bakefile.BAKE_FILE, "-f", str(net_file), "--progress", "plain"]
        for t in targets:
            for value in overrides(t, run_id, extra_labels=extra_labels or {}, cache_from=cache_from or [],
                                   cache_to=cache_to or [], nocache=nocache):
                cmd += ["--set", value]
        cmd += [t.name for t in targets]
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
        say(f"docker buildx bake {' '.join(t.name for t in targets)} (SOURCE_DATE_EPOCH={env['SOURCE_DATE_EPOCH']})")
        try:
            code, tail = run_bake(cmd, cwd=project.root, env=env, log_file=log_file, on_line=on_line)
        except BaseException:
            _drop_staging(engine, targets, run_id)
            raise
        if code != 0:
            _drop_staging(engine, targets, run_id)
            exc = BuildFailed(f"docker buildx bake failed (exit {code}); nothing was tagged",
                              step=failing_step(tail), log_tail=tail[-15:], log_file=str(log_file),
                              hint="fix the failing step (the log names it) and run `dlbase bake` again")
            if hash_mismatch(tail):
                exc.message += " (a wheel's sha256 is not one the lock pins)"
                exc.hint = ("a served wheel differs from the one locked: remove it from the wheelhouse and "
                            "bake again, or re-lock with `dlbase lock`")
            raise exc
        try:  # every image is read back before any is tagged: a run tags all of its targets or none
            probes = [_read_back(engine, t, run_id, check_versions, say) for t in targets]
            return [_finish(project, engine, t, run_id, probe, repository=repository, check_versions=check_versions,
                            tag=tag, log_file=log_file, started=started) for t, probe in zip(targets, probes)]
        except BaseException:
            _drop_staging(engine, targets, run_id)
            raise


def _read_back(engine: Engine, t: Target, run_id: str, check_versions: bool,
               say: Callable[[str], None]) -> dict:
    """What the baked image of ``t`` contains; ImageMismatch when it is not what its variant says."""
    if not check_versions:
        return {}
    say(f"{t.spec.name}: reading the versions back from inside the image")
    probe = read_back(engine, t.staging(run_id))
    problems = builder.compare(t.spec, probe)
    if problems:
        raise ImageMismatch(f"{t.spec.name}: the built image is not what the variant says; no tag was applied",
                            details=problems, hint="check the lock and the templates; nothing was tagged")
    return probe


def _finish(project: Project, engine: Engine, t: Target, run_id: str, probe: dict, *, repository: str | None,
            check_versions: bool, tag: bool, log_file: Path, started: float) -> builder.BuildResult:
    """Tag one image that was read back (its staging tag goes), report it."""
    staging = t.staging(run_id)
    image_id = engine.inspect_image(staging)["Id"]
    named = probe if check_versions else {k: t.spec.versions()[k] for k in ("torch", "cuda", "python")}
    immutable = tags.immutable_tag(torch=named["torch"], cuda=named["cuda"],
                                   cudnn=builder.cudnn_text(probe, t.spec),
                                   python=named["python"], flavor=t.spec.variant.flavor.name,
                                   os_name=t.spec.variant.base.os, lock_hash=t.lock_hash)
    repo = repository or project.matrix.repository
    applied = [engine.tag(image_id, repo, x) for x in (immutable, t.spec.moving_tag)] if tag else [staging]
    if tag:
        srepo, _, stag = staging.rpartition(":")
        engine.untag(srepo, stag)
    result = builder.BuildResult(variant=t.spec.name, image_id=image_id, immutable_tag=f"{repo}:{immutable}",
                                 moving_tag=f"{repo}:{t.spec.moving_tag}", tags=applied, lock_hash=t.lock_hash,
                                 base_ref=t.base_ref, base_digest=t.base_digest,
                                 seconds=round(time.monotonic() - started, 1),
                                 size_bytes=int(engine.inspect_image(image_id).get("Size", 0)),
                                 log_file=str(log_file), probe=probe)
    if tag:
        result.report_file = str(builder.write_report(project, result, t.spec))
    return result
