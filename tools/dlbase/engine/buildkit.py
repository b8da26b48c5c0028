"""Running a BuildKit build: ``docker buildx build`` straight into the daemon's image store.

docker-py has no BuildKit API (it would need BuildKit's gRPC session, docker/docker-py#2230),
so the buildx CLI runs as a child process in a process group of its own, its ``--progress
rawjson`` stderr read by the pure :mod:`dlbase.engine.buildkitstream`.

Why ``type=image`` with OCI media types and no ``rewrite-timestamp``: the layers are already
the same bytes in every build (each RUN dates what it wrote to FILE_EPOCH, every COPY takes a
folder of stage "sources", which dated it, into an existing one; the context is staged by
:mod:`dlbase.build.context`), so nothing needs rewriting.
BuildKit 0.13's rewrite converted every layer on every export (the cache's blobs never carry
its "rewritten" mark): measured at 447 s for a rebuild after a one-file edit of the default
image, and it only works with the OCI exporter, which then needed a ``docker load``. With
``SOURCE_DATE_EPOCH`` the image config's times are the commit time, and with the containerd
image store the image's ID is its manifest digest, the one a push keeps. The image is stored
without a name, so it gets no tag until the caller has read it back.

Failures leave nothing: BuildKit makes no containers, the scratch folder goes on every
path, and an image a build stored before it failed or was interrupted (buildx exports the
image first and a registry cache after it, so a rejected ``--cache-to`` fails a build whose
image is already in the store) is removed -- only when this build made it: its digest (read
from buildx's metadata file, else from the exporter's "exporting manifest" line) was not in
the store when the build started, and nothing tags it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dlbase.core import errors, layercompression, orphans, scratchdirs
from dlbase.engine.buildkitstream import BuildKitStreamParser
from dlbase.engine.buildstream import BuildEvent
from dlbase.engine.images import Images

BUILDX_HINT = ("install docker-buildx (Debian: the docker-buildx package; `sudo tools/host/setup.sh` does it), "
               "or build with `--builder classic`")
OCI_STORE_HINT = ("turn on the containerd image store (\"features\": {\"containerd-snapshotter\": true} in "
                  "/etc/docker/daemon.json; `sudo tools/host/setup.sh` does it), or build with `--builder classic`")
SCRATCH_PREFIX = "dlbase-buildkit-"
CACHE_EXPORT_HINT = ("the docker driver exports a registry cache only with the containerd image store; "
                     "otherwise use a docker-container builder, or leave --cache-to out")
# How long buildx may take to stop after it was asked to (SIGINT cancels the solve).
STOP_WAIT_S = 15.0


@dataclass(frozen=True)
class BuildKitOptions:
    """Everything one ``docker buildx build`` is asked to do (pure data, so the command
    line it becomes is unit-testable)."""

    context_dir: str
    dockerfile: str
    metadata_file: str
    buildargs: dict[str, str]
    labels: dict[str, str]
    network_mode: str | None = None
    nocache: bool = False
    pull: bool = False
    cache_from: tuple[str, ...] = ()
    cache_to: str | None = None
    builder: str = "default"
    compression: str = layercompression.GZIP  # the layers' encoding (core.layercompression)


def cache_spec(ref: str, *, export: bool) -> str:
    """A ``--cache-from``/``--cache-to`` value: a plain REF means a registry cache at REF
    (``mode=max`` on export, so every layer group's cache is kept, not only the final
    stage's); a value with ``type=`` is buildx's own syntax and passed as it is."""
    if "type=" in ref:
        return ref
    return f"type=registry,ref={ref}" + (",mode=max" if export else "")


def buildx_argv(opts: BuildKitOptions) -> list[str]:
    """The ``docker buildx build`` arguments (after ``docker``) for ``opts``."""
    argv = ["buildx", "build", "--builder", opts.builder, "--progress", "rawjson",
            "--provenance=false", "--sbom=false",  # buildx's attestations carry timestamps
            "--file", str(Path(opts.context_dir) / opts.dockerfile),
            "--metadata-file", opts.metadata_file,
            "--output", "type=image," + layercompression.exporter_attrs(opts.compression)]
    if opts.network_mode:
        argv += ["--network", opts.network_mode]
    if opts.nocache:
        argv.append("--no-cache")
    if opts.pull:
        argv.append("--pull")
    for key, value in opts.buildargs.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in opts.labels.items():
        argv += ["--label", f"{key}={value}"]
    for ref in opts.cache_from:
        argv += ["--cache-from", cache_spec(ref, export=False)]
    if opts.cache_to:
        argv += ["--cache-to", cache_spec(opts.cache_to, export=True)]
    argv.append(str(opts.context_dir))
    return argv


class BuildKitBuilds(Images):
    """``_buildkit_build``: a build through buildx, returning the loaded image's ID."""

    #: The docker CLI (tests of the error paths point it at a fake).
    docker_cli: tuple[str, ...] = ("docker",)

    def _cli_env(self, source_date_epoch: int | None = None) -> dict[str, str]:
        env = dict(os.environ)
        if self._base_url:
            env["DOCKER_HOST"] = self._base_url
        env.pop("BUILDX_BUILDER", None)  # --builder names it
        if source_date_epoch is not None:
            env["SOURCE_DATE_EPOCH"] = str(int(source_date_epoch))
        return env

    def buildx_version(self) -> str | None:
        """``docker buildx version``'s first line, or None when buildx does not answer."""
        try:
            proc = subprocess.run([*self.docker_cli, "buildx", "version"], capture_output=True, text=True,
                                  timeout=20, env=self._cli_env())
        except (OSError, subprocess.SubprocessError):
            return None
        text = proc.stdout.strip()
        return text.splitlines()[0] if proc.returncode == 0 and text else None

    def _buildkit_build(self, context_dir: str | os.PathLike[str], dockerfile: str, *,
                        buildargs: dict[str, str], labels: dict[str, str], network_mode: str | None,
                        nocache: bool, pull: bool, on_event: Callable[[BuildEvent], None],
                        log_path: str | None, cache_from: list[str] | None, cache_to: str | None,
                        source_date_epoch: int | None, work_dir: str | os.PathLike[str] | None,
                        compression: str = layercompression.GZIP) -> str:
        context = Path(context_dir)
        if not context.is_dir():
            raise errors.Missing(f"build context {context} is not a directory")
        if not (context / dockerfile).is_file():
            raise errors.Missing(f"Dockerfile {context / dockerfile} does not exist")
        if self.buildx_version() is None:
            raise errors.Missing("docker buildx is not installed or does not answer (BuildKit builds need it)",
                                 hint=BUILDX_HINT)
        scratchdirs.sweep(work_dir, SCRATCH_PREFIX)  # what a killed build left
        scratch = scratchdirs.make(work_dir, SCRATCH_PREFIX)
        try:
            opts = BuildKitOptions(context_dir=str(context), dockerfile=dockerfile,
                                   metadata_file=str(scratch / "metadata.json"),
                                   buildargs=dict(buildargs), labels=dict(labels), network_mode=network_mode,
                                   nocache=nocache, pull=pull, cache_from=tuple(cache_from or ()), cache_to=cache_to,
                                   compression=compression)
            with open_log(log_path) as log:
                parser = BuildKitStreamParser(log=log, log_file=log_path)
                existed = self.image_ids()
                try:
                    self._run_buildx(opts, parser, on_event, source_date_epoch)
                except BaseException:
                    self.remove_made(_exported(opts.metadata_file, parser), existed)
                    raise
                image_id = self._stored_image(opts.metadata_file, parser)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        on_event(BuildEvent("done", text=image_id, image_id=image_id, elapsed=parser.elapsed()))
        return image_id

    def _run_buildx(self, opts: BuildKitOptions, parser: BuildKitStreamParser,
                    on_event: Callable[[BuildEvent], None], source_date_epoch: int | None) -> None:
        argv = [*self.docker_cli, *buildx_argv(opts)]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, encoding="utf-8", errors="replace", bufsize=1,
                                    env=self._cli_env(source_date_epoch), start_new_session=True,
                                    preexec_fn=orphans.stop_with_parent())
        except OSError as exc:
            raise errors.Missing(f"cannot run {argv[0]}: {exc.strerror or exc}", hint=BUILDX_HINT) from None
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                for event in parser.feed_line(line):
                    on_event(event)
            for event in parser.close():
                on_event(event)
            returncode = proc.wait()
        except KeyboardInterrupt:
            _stop(proc)  # an image stored just before the stop is no result: the caller drops it
            raise errors.Interrupted(f"build interrupted at {parser.trace.running_text or 'start'}; "
                                     "buildx was stopped and its partial output removed",
                                     details=[f"full log: {parser.log_file}"] if parser.log_file else []) from None
        except BaseException:
            _stop(proc)
            raise
        if returncode != 0:
            failure = parser.result_failure(returncode)
            if parser.trace.failed is None and any(
                    marker in failure.message for marker in ("Cannot connect to the Docker daemon",
                                                             "connection refused", "EOF")) and self._gone():
                raise self._unavailable(None, during="the build", details=failure.details)
            if "Cache export is not supported" in failure.message:
                failure.hint = CACHE_EXPORT_HINT
            raise failure

    def _stored_image(self, metadata_file: str, parser: BuildKitStreamParser) -> str:
        """The ID of the image buildx stored: the manifest digest its metadata file reports
        (the ID with the containerd store), else the config digest (the ID without it)."""
        reported = _exported(metadata_file, parser)
        for candidate in reported:
            if self.image_exists(candidate):
                return candidate
        raise parser.failure("buildx finished but the daemon holds no image it reported "
                             f"({', '.join(reported) or 'no digest'})")


def inputs_build_id(context_dir: str | os.PathLike[str], dockerfile: str, buildargs: dict[str, str],
                    labels: dict[str, str], source_date_epoch: int | None) -> str:
    """A ``dlbase.build-id`` that two builds of the same inputs share (the Dockerfile's text,
    the build arguments, the labels, the epoch), so the label does not make equal builds'
    digests differ; the context's files are not read (the digest itself tells those apart)."""
    try:
        text = (Path(context_dir) / dockerfile).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = dockerfile
    facts = json.dumps({"dockerfile": text, "buildargs": buildargs, "labels": labels,
                        "source_date_epoch": source_date_epoch}, sort_keys=True)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "dlbase-build:" + hashlib.sha256(facts.encode()).hexdigest()))


def _exported(metadata_file: str, parser: BuildKitStreamParser) -> list[str]:
    """The digests buildx says it exported: its metadata file's (written only when the
    build succeeds), else the manifest the exporter named in the stream."""
    return _metadata_digests(metadata_file) or ([parser.trace.manifest] if parser.trace.manifest else [])


def _metadata_digests(path: str) -> list[str]:
    """The manifest and config digests buildx's ``--metadata-file`` reports
    (``containerimage.digest``, ``containerimage.config.digest``), in that order."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    found = [data.get(key) for key in ("containerimage.digest", "containerimage.config.digest")]
    return [v for v in found if isinstance(v, str) and v.startswith("sha256:")]


def _stop(proc: subprocess.Popen) -> None:
    """Stop buildx and its process group: SIGINT first (buildx then cancels the build on
    the daemon), SIGKILL when it does not go within STOP_WAIT_S."""
    orphans.stop_group(proc, signal.SIGINT, STOP_WAIT_S)


@contextlib.contextmanager
def open_log(path: str | None) -> Iterator[IO[str] | None]:
    """The build log, written as the stream arrives (both builders use it)."""
    if not path:
        yield None
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        yield handle
