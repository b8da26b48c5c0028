"""Running a build on the daemon: choosing the builder, the classic builder's run, and
cleaning up after a failed classic build.

``Builds.build`` is the one entry point. It hands BuildKit builds to
:mod:`dlbase.engine.buildkit`; the classic builder's stream is read by the pure
:mod:`dlbase.engine.buildstream`, and this module starts that build, decides what a
broken stream means (a failing step, a daemon that went away, Ctrl-C) and removes
exactly the objects the failed build made.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from docker import errors as docker_errors

from dlbase.core import errors, layercompression
from dlbase.engine import builderchoice
from dlbase.engine.builderchoice import BuilderChoice
from dlbase.engine.buildkit import BuildKitBuilds, inputs_build_id, open_log
from dlbase.engine.buildstream import BuildEvent, BuildStreamParser, BuildTrace, killed_by_signal
from dlbase.engine.daemon import GONE_PROBE_S, api_message, is_connection_error, short_cause

BUILD_ID_LABEL = "dlbase.build-id"


class Builds(BuildKitBuilds):
    """``build``: the one way dlbase makes an image from a Dockerfile."""

    def containerd_store(self) -> bool | None:
        """Whether the daemon keeps images in the containerd image store (None: unknown)."""
        try:
            with self._translate("report its storage driver"):
                info = self._api.info()
        except errors.DaemonUnavailable:
            raise
        except errors.DlbaseError:
            return None
        status = dict(tuple(pair) for pair in (info.get("DriverStatus") or []) if len(pair) == 2)
        return status.get("driver-type") == "io.containerd.snapshotter.v1"

    def require_zstd(self, what: str) -> None:
        """Missing (exit 14) unless this daemon can hold zstd layers: Docker >= 23 on the
        containerd image store (:func:`dlbase.core.layercompression.reads_zstd`). Asked
        before a build, so a gzip-only daemon refuses nothing half-way."""
        version = str(self.version().get("Version") or "") or None
        if layercompression.reads_zstd(version, self.containerd_store()) is False:
            raise errors.Missing(f"{what} writes zstd layers, and this Docker daemon ({version}"
                                 f"{'' if self.containerd_store() else ', classic image store'}) cannot load them",
                                 hint="use Docker >= 23 with the containerd image store (`sudo tools/host/setup.sh` "
                                      "turns it on), or set the line to gzip under `compression:` in images/matrix.yaml")

    def choose_builder(self, requested: str = "auto") -> BuilderChoice:
        """The builder a build asking for ``requested`` gets, and why
        (:func:`dlbase.engine.builderchoice.choose`)."""
        if requested == builderchoice.CLASSIC:
            return builderchoice.choose(requested, buildx=None, containerd_store=None)
        return builderchoice.choose(requested, buildx=self.buildx_version(), containerd_store=self.containerd_store())

    def build(self, context_dir: str | os.PathLike[str], dockerfile: str = "Dockerfile", *,
              buildargs: dict[str, str] | None = None, labels: dict[str, str] | None = None,
              network_mode: str | None = None, nocache: bool = False, pull: bool = False,
              on_event: Callable[[BuildEvent], None] | None = None,
              log_path: str | os.PathLike[str] | None = None,
              clean_on_failure: bool = True, cache_from: list[str] | None = None,
              builder: str = "classic", cache_to: str | None = None, source_date_epoch: int | None = None,
              work_dir: str | os.PathLike[str] | None = None,
              compression: str = layercompression.GZIP) -> str:
        """Build, stream progress, return the image ID (untagged).

        ``builder``: "classic", "buildkit" or "auto" (:meth:`choose_builder`). Every build
        gets a ``dlbase.build-id`` label (kept if the caller passed one) so its final image
        can be found again. ``cache_from``: for the classic builder, local images whose
        layers it may reuse; for BuildKit, registry cache references. ``cache_to`` (BuildKit
        only): a registry cache reference to export to. ``source_date_epoch``: BuildKit's
        SOURCE_DATE_EPOCH (file and image timestamps). ``work_dir``: where BuildKit's
        temporary archive goes (the system's temp folder when None). ``compression``: the
        layers' encoding BuildKit's exporter writes; the classic builder writes gzip only
        (its caller says so), and is refused nothing here: ``compression`` is BuildKit's.

        On failure, Ctrl-C or the daemon vanishing nothing of the build stays: for the
        classic builder the containers and per-step images it created are removed (read
        off the stream, since the classic builder labels none of them), unless
        ``clean_on_failure`` is False (keeps the layer cache of the steps that passed).
        """
        log_file = str(log_path) if log_path else None
        emit = on_event or (lambda _event: None)
        name = builder if builder != "auto" else self.choose_builder(builder).name
        if name == builderchoice.BUILDKIT:
            # A random build ID would be a label that differs on every build, and so a
            # digest that does: BuildKit's is derived from the build's inputs instead.
            build_labels = {BUILD_ID_LABEL: inputs_build_id(context_dir, dockerfile, buildargs or {}, labels or {},
                                                            source_date_epoch), **(labels or {})}
            return self._buildkit_build(context_dir, dockerfile, buildargs=dict(buildargs or {}), labels=build_labels,
                                        network_mode=network_mode, nocache=nocache, pull=pull, on_event=emit,
                                        log_path=log_file, cache_from=cache_from, cache_to=cache_to,
                                        source_date_epoch=source_date_epoch, work_dir=work_dir,
                                        compression=compression)
        if name != builderchoice.CLASSIC:
            builderchoice.choose(name, buildx=None, containerd_store=None)  # the typed "unknown builder" error
        if cache_to:
            raise errors.InvalidInput("the classic builder cannot export a build cache (--cache-to)",
                                      hint="build with `--builder buildkit`, or leave --cache-to out")
        build_labels = {BUILD_ID_LABEL: str(uuid.uuid4()), **(labels or {})}
        stream: Any = None
        with open_log(log_file) as log:
            parser = BuildStreamParser(log=log, log_file=log_file)
            trace = parser.trace
            try:
                stream = self._start_build(context_dir, dockerfile, buildargs, build_labels,
                                           network_mode, nocache, pull, cache_from)
                for chunk in stream:
                    for event in parser.feed(chunk):
                        emit(event)
                short = parser.finish()
            except KeyboardInterrupt:
                self._abort_stream(stream)
                self._clean_failed_build(trace, clean_on_failure, build_labels[BUILD_ID_LABEL], interrupted=True)
                what = "removed what it had created" if clean_on_failure else "kept its layers"
                raise errors.Interrupted(f"build interrupted at {trace.step_text or 'start'}; {what}",
                                         details=_log_details(log_file)) from None
            except errors.BuildFailed as exc:
                # A step "failing" because the daemon is shutting down (its container was
                # killed, exit 137) is the daemon's going, not the Dockerfile's fault.
                if self._gone(within=GONE_PROBE_S if killed_by_signal(exc.message) else 0):
                    raise self._unavailable(None, during="the build", details=exc.details) from None
                self._clean_failed_build(trace, clean_on_failure, build_labels[BUILD_ID_LABEL])
                raise
            except errors.DlbaseError:
                self._clean_failed_build(trace, clean_on_failure, build_labels[BUILD_ID_LABEL])
                raise
            except Exception as exc:  # noqa: BLE001 - classified, then re-raised typed
                self._clean_failed_build(trace, clean_on_failure, build_labels[BUILD_ID_LABEL])
                raise self._build_exception(exc, parser) from None
        image_id = self._full_image_id(short)
        self._remove_earlier_stages(trace)
        emit(BuildEvent("done", text=image_id, image_id=image_id, elapsed=parser.elapsed()))
        return image_id

    def _remove_earlier_stages(self, trace: BuildTrace) -> None:
        """Remove the images this build committed for its earlier stages, newest first.

        Why: nothing points at them once the build is done (the image holds only its last
        stage), and on the containerd store each is a dangling image that no clean-up by
        label finds. A next build runs those stages again (seconds: copies and a touch),
        and its ``COPY --from`` steps still hit the cache, whose key is the copied files'
        content, the same after a rerun."""
        for image_id in reversed(trace.earlier_stage_images):
            with contextlib.suppress(Exception):
                if not self._has_tags(image_id):
                    self._api.remove_image(image_id)

    def _start_build(self, context_dir: str | os.PathLike[str], dockerfile: str,
                     buildargs: dict[str, str] | None, labels: dict[str, str],
                     network_mode: str | None, nocache: bool, pull: bool,
                     cache_from: list[str] | None = None) -> Iterator[dict]:
        context = Path(context_dir)
        if not context.is_dir():
            raise errors.Missing(f"build context {context} is not a directory")
        if not (context / dockerfile).is_file():
            raise errors.Missing(f"Dockerfile {context / dockerfile} does not exist")
        return self._api.build(path=str(context), dockerfile=dockerfile, buildargs=buildargs or {},
                               labels=labels, network_mode=network_mode, nocache=nocache,
                               pull=pull, rm=True, forcerm=True, decode=True, cache_from=cache_from)

    def _build_exception(self, exc: BaseException, parser: BuildStreamParser) -> errors.DlbaseError:
        trace = parser.trace
        if isinstance(exc, docker_errors.APIError):
            return parser.failure(f"Docker daemon refused the build: {api_message(exc)}")
        if is_connection_error(exc):
            if not self._gone():
                return parser.failure(f"build stream broke: {short_cause(exc)}")
            return self._unavailable(exc, during="the build" if trace.started else None,
                                     details=parser.failure("").details if trace.started else None)
        return parser.failure(f"build failed: {exc}")

    def _clean_failed_build(self, trace: BuildTrace, enabled: bool, build_id: str, *,
                            interrupted: bool = False) -> None:
        """Remove this build's intermediate containers and the images it committed.

        Best effort, and only objects read off this build's stream (plus, after Ctrl-C,
        containers created since the build began from the last image of its chain, whose
        "Running in" line may not have reached us yet). Images are removed newest first
        without force, so an image another build now uses (a cache hit) is left alone.
        With ``enabled`` False the steps that passed stay as layer cache, except those
        after the build's own ``dlbase.build-id`` LABEL: no other build can reuse them
        (the ID is this build's), and on the containerd store they showed as dangling
        images nothing removed.
        """
        if not self._answers():
            return
        if not enabled:
            with contextlib.suppress(Exception):
                self.remove_build_leftovers({build_id})  # type: ignore[attr-defined]  # Cleanup, in Engine
            return
        if interrupted:
            time.sleep(0.5)  # the daemon cancels the build when the stream closes; let it
        for container_id in self._failed_build_containers(trace, interrupted):
            with contextlib.suppress(Exception):
                self._api.remove_container(container_id, force=True)
        built = {trace.image_id} if trace.image_id else set()
        for image_id in reversed(trace.created_images + sorted(built)):
            with contextlib.suppress(Exception):
                if not self._has_tags(image_id):
                    self._api.remove_image(image_id)

    def _failed_build_containers(self, trace: BuildTrace, interrupted: bool) -> list[str]:
        """Containers this build left: the "Running in" ones, and after Ctrl-C also a
        step container created from the chain's last image whose line never reached us
        (same parent image, created during the build, a builder-style shell command)."""
        found = list(trace.containers)
        if interrupted and trace.chain:
            parent = trace.chain[-1]
            with contextlib.suppress(Exception):
                for summary in self._api.containers(all=True, filters={"ancestor": parent}):
                    if _is_step_container_of(summary, parent, trace):
                        found.append(summary["Id"])
        return found


def _is_step_container_of(summary: dict[str, Any], parent: str, trace: BuildTrace) -> bool:
    started_wall = time.time() - (time.monotonic() - trace.started_at)
    image_id = str(summary.get("ImageID", "")).removeprefix("sha256:")
    return (image_id.startswith(parent.removeprefix("sha256:"))
            and float(summary.get("Created", 0)) >= started_wall - 2
            and str(summary.get("Command", "")).startswith("/bin/sh -c"))


def _log_details(log_file: str | None) -> list[str]:
    return [f"full log: {log_file}"] if log_file else []

