"""The one module that talks to the Docker daemon.

Everything else in dlbase (matrix, compat, render, lock, build orchestration, verify,
publish) goes through :class:`Engine`, so those modules are testable without a daemon
and another engine (buildx, a remote builder, a fake in tests) can stand in behind the
same small interface -- the idea of repo2docker's ``engine.py``.

Rules this module keeps:

* Nothing here prints. Progress goes to callbacks (``on_event``) and to log files;
  failures are the typed errors of :mod:`dlbase.errors`, carrying a message and a hint.
* docker/requests exceptions never escape: connection problems become
  :class:`~dlbase.errors.DaemonUnavailable` naming the endpoint, API errors become the
  closest typed error (``Missing`` for "not found", ``BuildFailed`` for builds, ...).
* Everything this module creates on the daemon carries a ``dlbase.*`` label, and the
  clean-up paths only ever remove objects that this process created or that carry a
  ``dlbase.*`` label, because the daemon is shared with other people's work.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker
import requests
import urllib3
from docker import errors as docker_errors
from docker.types import DeviceRequest

from dlbase import errors

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
START_HINT = "run `sudo tools/host/setup.sh` or start dockerd"
REMOTE_HINT = ("start the daemon that should listen there, or unset DOCKER_HOST to use the local one "
               "(`sudo tools/host/setup.sh` starts it)")
# How long a broken build stream waits for the daemon to answer again before calling it gone.
GONE_PROBE_S = 3.0
MANAGED_LABEL = "dlbase.managed"
BUILD_ID_LABEL = "dlbase.build-id"
LOG_TAIL_LINES = 20

# Classic-builder stream lines we react to.
_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_RUNNING_IN_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
_LAYER_RE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_USING_CACHE = " ---> Using cache"
_BUILT_RE = re.compile(r"^Successfully built ([0-9a-f]{12,64})$")
# RUN output on stderr arrives wrapped in terminal colour codes; logs and tails want text.
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class BuildEvent:
    """One thing that happened during a build, for a progress display.

    ``kind`` is one of:
      ``step``      a new Dockerfile instruction started (``step``/``total``/``text``)
      ``output``    a line the build printed (RUN output, builder messages)
      ``progress``  pull/download progress of a layer (``layer``, ``current``, ``total``)
      ``status``    any other status line (pull "Pulling fs layer", "Digest: ...")
      ``cached``    the current step (``step``/``total``/``text``) was a layer-cache hit
      ``done``      the build finished; ``image_id`` is set
    ``elapsed`` is seconds since the build started, so the CLI need not keep a clock.
    """

    kind: str
    text: str = ""
    step: int | None = None
    total: int | None = None
    layer: str | None = None
    current: int | None = None
    total_bytes: int | None = None
    image_id: str | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class RunResult:
    """What a finished (or timed-out) container left: exit code and combined output.

    ``exit_code`` is None when the command timed out (``timed_out``) or when the run was
    detached (``container_id`` is then set and the daemon removes the container on exit).
    """

    exit_code: int | None
    output: str
    timed_out: bool = False
    container_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class StartedContainer:
    """A running container handed out by :meth:`Engine.started`."""

    id: str
    name: str
    ports: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    @property
    def testinfra_host(self) -> str:
        """The pytest-testinfra ``--hosts`` value for this container."""
        return f"docker://{self.name}"


@dataclass(frozen=True)
class CleanupReport:
    """What :meth:`Engine.cleanup` removed, and what it had to keep (ID -> reason)."""

    containers: list[str]
    images: list[str]
    kept: dict[str, str] = field(default_factory=dict)


@dataclass
class _BuildTrace:
    """What the build stream told us about objects this build created.

    The classic builder does not label intermediate containers or per-step images, so
    the only reliable way to know which ones are ours is to read them off the stream.
    """

    started_at: float
    containers: list[str] = field(default_factory=list)
    created_images: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)  # every " ---> id" in order (incl. FROM, cache)
    step_text: str | None = None
    step_cached: bool = False  # the current step printed " ---> Using cache"
    image_id: str | None = None


# --------------------------------------------------------------------------- errors


def _endpoint_from_env() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT


def _is_connection_error(exc: BaseException) -> bool:
    """True for every shape in which "the daemon is not there" reaches us.

    docker-py wraps some of them in DockerException ("Error while fetching server API
    version: ..."), requests raises ConnectionError for a dead socket or port, and a
    daemon dying mid-stream surfaces as ChunkedEncodingError, or -- docker-py reads the
    build stream from the raw urllib3 response, which requests does not wrap -- as
    urllib3's ProtocolError ("Connection broken: IncompleteRead") or http.client's
    IncompleteRead. Whether the daemon is really gone is then decided by pinging it.
    """
    if isinstance(exc, (requests.exceptions.ConnectionError,
                        requests.exceptions.ChunkedEncodingError,
                        urllib3.exceptions.ProtocolError, http.client.HTTPException,
                        ConnectionError, FileNotFoundError)):
        return True
    if isinstance(exc, docker_errors.APIError):
        return False
    if isinstance(exc, docker_errors.DockerException):
        text = str(exc)
        return "Error while fetching server API version" in text or "Connection" in text
    return False


def _short_cause(exc: BaseException) -> str:
    """The reason a connection failed, in a few words, not docker-py's nested reprs."""
    text = str(exc)
    for needle, words in (("FileNotFoundError", "no socket file there"),
                          ("No such file or directory", "no socket file there"),
                          ("Connection refused", "connection refused"),
                          ("Permission denied", "permission denied (use sudo or join the docker group)"),
                          ("Name or service not known", "unknown host name"),
                          ("timed out", "timed out"),
                          ("IncompleteRead", "connection broken mid-stream (IncompleteRead)"),
                          ("Connection broken", "connection broken mid-stream"),
                          ("Connection reset", "connection reset")):
        if needle in text:
            return words
    return text if len(text) <= 160 else text[:157] + "..."


def _api_message(exc: docker_errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc).strip()


# --------------------------------------------------------------------------- engine


class Engine:
    """A narrow, typed facade over docker-py for the operations dlbase needs.

    The client is created lazily: constructing an Engine never touches the daemon, so a
    CLI can build one up front and only fail (with a clear message) when it needs Docker.
    """

    def __init__(self, base_url: str | None = None, *, timeout: int = 120):
        self._base_url = base_url
        self._timeout = timeout
        self._client_obj: docker.DockerClient | None = None

    # ---- connection ------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The daemon address this engine talks to, for messages."""
        return self._base_url or _endpoint_from_env()

    def _unavailable(self, cause: BaseException | None = None, *, during: str | None = None,
                     details: list[str] | None = None) -> errors.DaemonUnavailable:
        what = f"Docker daemon at {self.endpoint} "
        what += f"went away during {during}" if during else "is not reachable"
        remote = self._base_url is not None or "DOCKER_HOST" in os.environ
        lines = [f"cause: {_short_cause(cause)}"] if cause else []
        err = errors.DaemonUnavailable(what, hint=REMOTE_HINT if remote and self.endpoint != DEFAULT_ENDPOINT
                                       else START_HINT, details=lines + list(details or []))
        return err

    @property
    def _client(self) -> docker.DockerClient:
        if self._client_obj is None:
            try:
                if self._base_url:
                    self._client_obj = docker.DockerClient(base_url=self._base_url, version="auto",
                                                           timeout=self._timeout)
                else:
                    self._client_obj = docker.from_env(version="auto", timeout=self._timeout)
            except docker_errors.DockerException as exc:
                raise self._unavailable(exc) from None
        return self._client_obj

    @property
    def _api(self) -> docker.APIClient:
        return self._client.api

    @contextlib.contextmanager
    def _translate(self, action: str, *, missing: str | None = None) -> Iterator[None]:
        """Turn docker/requests exceptions raised inside the block into typed errors."""
        try:
            yield
        except errors.DlbaseError:
            raise
        except docker_errors.NotFound as exc:
            raise errors.Missing(f"{missing or action}: {_api_message(exc)}") from None
        except docker_errors.APIError as exc:
            raise errors.DlbaseError(f"Docker daemon refused to {action}: {_api_message(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised otherwise
            if _is_connection_error(exc):
                raise self._unavailable(exc) from None
            raise

    def ping(self) -> None:
        """Raise DaemonUnavailable (one line, naming the endpoint) unless the daemon answers."""
        with self._translate("answer a ping"):
            self._api.ping()

    def version(self) -> dict[str, Any]:
        """The daemon's version document (Version, ApiVersion, ...)."""
        with self._translate("report its version"):
            return self._api.version()

    def has_nvidia_runtime(self) -> bool:
        """True when the daemon lists an ``nvidia`` runtime (nvidia-container-toolkit)."""
        with self._translate("report its runtimes"):
            info = self._api.info()
        return any("nvidia" in name for name in (info.get("Runtimes") or {}))

    # ---- images ----------------------------------------------------------------

    def image_exists(self, ref: str) -> bool:
        try:
            self.inspect_image(ref)
        except errors.Missing:
            return False
        return True

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """The daemon's inspect document; Missing when there is no such image."""
        with self._translate("inspect an image", missing=f"no image {ref!r}"):
            return self._api.inspect_image(ref)

    def image_labels(self, ref: str) -> dict[str, str]:
        return dict((self.inspect_image(ref).get("Config") or {}).get("Labels") or {})

    def remove_image(self, ref: str, force: bool = False) -> None:
        with self._translate(f"remove image {ref}", missing=f"no image {ref!r}"):
            self._api.remove_image(ref, force=force)

    def tag(self, image_id: str, repository: str, tag: str) -> str:
        """Point ``repository:tag`` at ``image_id`` and return the full reference."""
        with self._translate(f"tag {image_id} as {repository}:{tag}", missing=f"no image {image_id!r}"):
            self._api.tag(image_id, repository, tag, force=True)
        return f"{repository}:{tag}"

    def untag(self, repository: str, tag: str) -> None:
        """Remove one tag.

        The daemon deletes the image too when this was its last tag and nothing (a
        container, a child image) uses it -- an untagged top image is only clutter.
        Its untagged parent layers go with it, as with `docker rmi`.
        """
        ref = f"{repository}:{tag}"
        with self._translate(f"untag {ref}", missing=f"no tag {ref!r}"):
            self._api.remove_image(ref)

    def image_history(self, ref: str) -> list[dict[str, Any]]:
        """The image's layer history (``docker history``): each step's ``CreatedBy``, newest first.
        Build args used by a RUN step are recorded there, which is why verify reads it."""
        with self._translate("read an image's history", missing=f"no image {ref!r}"):
            return list(self._api.history(ref))

    def images_with_label(self, label: str) -> list[dict[str, Any]]:
        """Image summaries carrying ``label`` (``key`` or ``key=value``)."""
        with self._translate("list images"):
            return self._api.images(all=True, filters={"label": label})

    def dangling_images(self) -> list[str]:
        with self._translate("list images"):
            return [img["Id"] for img in self._api.images(filters={"dangling": True})]

    def containers_with_label(self, label: str) -> list[dict[str, Any]]:
        with self._translate("list containers"):
            return self._api.containers(all=True, filters={"label": label})

    def import_rootfs(self, tar: str | os.PathLike[str] | IO[bytes], repository: str, tag: str,
                      changes: list[str] | None = None, labels: dict[str, str] | None = None) -> str:
        """``docker import`` a root filesystem tar and return the new image ID.

        Labels are expressed as ``LABEL`` changes because the import API has no labels
        parameter; values are JSON-quoted so spaces and ``=`` survive.
        """
        all_changes = list(changes or [])
        for key, value in (labels or {}).items():
            all_changes.append(f"LABEL {json.dumps(key)}={json.dumps(value)}")
        src: Any = os.fspath(tar) if isinstance(tar, (str, os.PathLike)) else tar
        with self._translate(f"import {repository}:{tag}"):
            raw = self._api.import_image(src=src, repository=repository, tag=tag,
                                         changes=all_changes or None)
        image_id = _import_result_id(raw)
        if image_id is None:
            image_id = self.inspect_image(f"{repository}:{tag}")["Id"]
        return image_id

    # ---- build -----------------------------------------------------------------

    def build(self, context_dir: str | os.PathLike[str], dockerfile: str = "Dockerfile", *,
              buildargs: dict[str, str] | None = None, labels: dict[str, str] | None = None,
              network_mode: str | None = None, nocache: bool = False, pull: bool = False,
              on_event: Callable[[BuildEvent], None] | None = None,
              log_path: str | os.PathLike[str] | None = None,
              clean_on_failure: bool = True, cache_from: list[str] | None = None) -> str:
        """Build with the classic builder, stream progress, return the image ID (untagged).

        Every build gets a ``dlbase.build-id`` label (kept if the caller passed one) so
        its final image can be found again. On failure, Ctrl-C or the daemon vanishing,
        the containers and per-step images this build created are removed (they are read
        off the stream, since the classic builder labels none of them), unless
        ``clean_on_failure`` is False (keeps the layer cache of the steps that passed).
        """
        build_labels = {BUILD_ID_LABEL: str(uuid.uuid4()), **(labels or {})}
        trace = _BuildTrace(started_at=time.monotonic())
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        log_file = str(log_path) if log_path else None
        emit = on_event or (lambda _event: None)
        with _open_log(log_file) as log:
            try:
                stream = self._start_build(context_dir, dockerfile, buildargs, build_labels,
                                           network_mode, nocache, pull, cache_from)
                for chunk in stream:
                    self._handle_chunk(chunk, trace, tail, log, emit, log_file)
            except KeyboardInterrupt:
                self._abort_stream(locals().get("stream"))
                self._clean_failed_build(trace, clean_on_failure, interrupted=True)
                what = "removed what it had created" if clean_on_failure else "kept its layers"
                raise errors.Interrupted(f"build interrupted at {trace.step_text or 'start'}; {what}",
                                         details=_log_details(log_file)) from None
            except errors.BuildFailed as exc:
                # A step "failing" because the daemon is shutting down (its container was
                # killed, exit 137) is the daemon's going, not the Dockerfile's fault.
                if self._gone(within=GONE_PROBE_S if _killed_by_signal(exc.message) else 0):
                    raise self._unavailable(None, during="the build", details=exc.details) from None
                self._clean_failed_build(trace, clean_on_failure)
                raise
            except errors.DlbaseError:
                self._clean_failed_build(trace, clean_on_failure)
                raise
            except Exception as exc:  # noqa: BLE001 - classified, then re-raised typed
                self._clean_failed_build(trace, clean_on_failure)
                raise self._build_exception(exc, trace, tail, log_file) from None
        if trace.image_id is None:
            self._clean_failed_build(trace, clean_on_failure)
            raise errors.BuildFailed("build stream ended without an image ID", step=trace.step_text,
                                     log_tail=list(tail), log_file=log_file)
        image_id = self._full_image_id(trace.image_id)
        emit(BuildEvent("done", text=image_id, image_id=image_id, elapsed=_since(trace)))
        return image_id

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

    def _handle_chunk(self, chunk: dict[str, Any], trace: _BuildTrace, tail: deque[str],
                      log: IO[str] | None, emit: Callable[[BuildEvent], None],
                      log_file: str | None) -> None:
        """Log one JSON chunk of the build stream, update the trace, emit events."""
        elapsed = _since(trace)
        if "error" in chunk or "errorDetail" in chunk:
            message = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error") or ""
            _log_line(log, tail, f"ERROR: {message.strip()}")
            raise errors.BuildFailed(
                f"build failed at {trace.step_text or 'start'}: {message.strip()}",
                step=trace.step_text, log_tail=list(tail), log_file=log_file,
                hint="read the log tail above; fix the Dockerfile step or its inputs")
        if "aux" in chunk:
            aux_id = (chunk.get("aux") or {}).get("ID")
            if aux_id:
                trace.image_id = aux_id
            return
        if "stream" in chunk:
            for line in _ANSI_RE.sub("", str(chunk["stream"])).splitlines():
                if not line.strip():
                    continue  # the builder separates steps with blank lines
                _log_line(log, tail, line)
                emit(self._stream_event(line, trace, elapsed))
            return
        if "status" in chunk:
            emit(_status_event(chunk, log, tail, elapsed))

    def _stream_event(self, line: str, trace: _BuildTrace, elapsed: float) -> BuildEvent:
        """Classify one builder line and record what it says about created objects."""
        step = _STEP_RE.match(line)
        if step:
            trace.step_text = line
            trace.step_cached = False
            return BuildEvent("step", text=step.group(3), step=int(step.group(1)),
                              total=int(step.group(2)), elapsed=elapsed)
        running = _RUNNING_IN_RE.match(line)
        if running:
            trace.containers.append(running.group(1))
        elif line.startswith(_USING_CACHE):
            trace.step_cached = True
            step_match = _STEP_RE.match(trace.step_text or "")
            if step_match:
                return BuildEvent("cached", text=step_match.group(3), step=int(step_match.group(1)),
                                  total=int(step_match.group(2)), elapsed=elapsed)
        layer = _LAYER_RE.match(line)
        if layer:
            trace.chain.append(layer.group(1))
            # FROM's image and cache hits existed before this build: never ours to remove.
            if not trace.step_cached and not _is_from_step(trace.step_text):
                trace.created_images.append(layer.group(1))
        built = _BUILT_RE.match(line)
        if built and trace.image_id is None:
            trace.image_id = built.group(1)
        return BuildEvent("output", text=line, step=_step_number(trace), elapsed=elapsed)

    def _build_exception(self, exc: BaseException, trace: _BuildTrace, tail: deque[str],
                         log_file: str | None) -> errors.DlbaseError:
        if isinstance(exc, docker_errors.APIError):
            return errors.BuildFailed(f"Docker daemon refused the build: {_api_message(exc)}",
                                      step=trace.step_text, log_tail=list(tail), log_file=log_file)
        if _is_connection_error(exc):
            if not self._gone():
                return errors.BuildFailed(f"build stream broke: {_short_cause(exc)}", step=trace.step_text,
                                          log_tail=list(tail), log_file=log_file)
            started = bool(trace.step_text or trace.chain)
            context = errors.BuildFailed("", step=trace.step_text, log_tail=list(tail), log_file=log_file)
            return self._unavailable(exc, during="the build" if started else None,
                                     details=context.details if started else None)
        return errors.BuildFailed(f"build failed: {exc}", step=trace.step_text,
                                  log_tail=list(tail), log_file=log_file)

    def _abort_stream(self, stream: Any) -> None:
        """Drop the build's HTTP connection so the daemon sees the client go and cancels.

        Closing the decoding generator alone can leave the response's socket in the
        connection pool; closing the session's adapters really closes it (later calls
        open new connections).
        """
        with contextlib.suppress(Exception):
            stream.close()
        with contextlib.suppress(Exception):
            self._api.close()

    def _gone(self, within: float = GONE_PROBE_S) -> bool:
        """True when the daemon fails to answer a ping at any point within ``within`` s.

        A daemon being stopped closes build streams (or kills the step's container) a
        moment before it stops answering pings, so one ping right after a broken stream
        can still succeed; a daemon that answers every ping for the whole window is up.
        """
        deadline = time.monotonic() + within
        while True:
            if not self._answers():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)

    def _answers(self) -> bool:
        try:
            self._api.ping()
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            return False
        return True

    def _full_image_id(self, short: str) -> str:
        if short.startswith("sha256:") and len(short) == 71:
            return short
        return self.inspect_image(short)["Id"]

    def _clean_failed_build(self, trace: _BuildTrace, enabled: bool, *, interrupted: bool = False) -> None:
        """Remove this build's intermediate containers and the images it committed.

        Best effort, and only objects read off this build's stream (plus, after Ctrl-C,
        containers created since the build began from the last image of its chain, whose
        "Running in" line may not have reached us yet). Images are removed newest first
        without force, so an image another build now uses (a cache hit) is left alone.
        """
        if not enabled or not self._answers():
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

    def _failed_build_containers(self, trace: _BuildTrace, interrupted: bool) -> list[str]:
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

    def _has_tags(self, image_id: str) -> bool:
        tags = self._api.inspect_image(image_id).get("RepoTags") or []
        return any(tag != "<none>:<none>" for tag in tags)

    # ---- registry: push, pull ----------------------------------------------------

    def push(self, repository: str, tag: str, *, auth_config: dict[str, str] | None = None,
             on_event: Callable[[PushEvent], None] | None = None) -> PushResult:
        """Push ``repository:tag`` (the repository names the registry host) and return the
        manifest digest the registry answered with.

        The daemon reports most push failures *inside* the JSON stream (``error`` /
        ``errorDetail`` chunks) and docker-py does not raise on them, so every chunk is
        checked here: a connection failure to the registry becomes
        :class:`~dlbase.errors.Unreachable`, anything else (credentials, storage errors,
        protocol) :class:`~dlbase.errors.RegistryError`, with the daemon's own words.
        A stream that ends without a digest is an error too. Ctrl-C drops the connection
        (the daemon then cancels the push; the registry is left with unreferenced blobs at
        most, never a new manifest) and raises Interrupted.
        """
        ref = f"{repository}:{tag}"
        emit = on_event or (lambda _event: None)
        started = time.monotonic()
        layers: dict[str, str] = {}
        digest: str | None = None
        size: int | None = None
        stream: Any = None
        try:
            with self._translate(f"push {ref}", missing=f"no local image {ref!r}"):
                try:
                    stream = self._api.push(repository, tag=tag, stream=True, decode=True,
                                            auth_config=auth_config or None)
                except docker_errors.APIError as exc:
                    if isinstance(exc, docker_errors.NotFound):
                        raise
                    _raise_stream_error({"error": _api_message(exc)}, f"push of {ref}")
                for chunk in stream:
                    elapsed = round(time.monotonic() - started, 3)
                    _raise_stream_error(chunk, f"push of {ref}")
                    aux = chunk.get("aux") or {}
                    if aux.get("Digest"):
                        digest, size = str(aux["Digest"]), aux.get("Size")
                        continue
                    status = str(chunk.get("status", ""))
                    found = _PUSH_DIGEST_RE.search(status)
                    if found:
                        digest, size = found.group(1), int(found.group(2))
                    layer = chunk.get("id")
                    detail = chunk.get("progressDetail") or {}
                    if layer and detail.get("total"):
                        emit(PushEvent("progress", text=status, layer=layer, current=detail.get("current"),
                                       total_bytes=detail.get("total"), elapsed=elapsed))
                    elif layer and (status in ("Pushed", "Layer already exists") or status.startswith("Mounted from")):
                        layers[layer] = status
                        emit(PushEvent("layer", text=status, layer=layer, elapsed=elapsed))
                    elif status:
                        emit(PushEvent("status", text=f"{layer}: {status}" if layer else status,
                                       layer=layer, elapsed=elapsed))
        except KeyboardInterrupt:
            self._abort_stream(stream)
            raise errors.Interrupted(f"push of {ref} interrupted; the registry holds no new manifest "
                                     "for it (at most unreferenced layer blobs)") from None
        if not digest:
            raise errors.RegistryError(f"push of {ref} ended without the registry naming a digest",
                                       hint="look at the registry's log; the push may be incomplete")
        seconds = round(time.monotonic() - started, 3)
        emit(PushEvent("done", text=digest, digest=digest, elapsed=seconds))
        return PushResult(reference=ref, digest=digest, size=size, layers=layers, seconds=seconds)

    def pull(self, repository: str, reference: str, *, auth_config: dict[str, str] | None = None,
             on_event: Callable[[PushEvent], None] | None = None) -> str:
        """Pull ``repository@sha256:...`` (or ``:tag``) and return the local image ID.

        Errors reported inside the pull stream are raised like :meth:`push`'s.
        """
        sep = "@" if reference.startswith("sha256:") else ":"
        ref = f"{repository}{sep}{reference}"
        emit = on_event or (lambda _event: None)
        started = time.monotonic()
        stream: Any = None
        try:
            with self._translate(f"pull {ref}", missing=f"no image {ref!r} in the registry"):
                try:
                    stream = self._api.pull(repository, tag=reference, stream=True, decode=True,
                                            auth_config=auth_config or None)
                except docker_errors.APIError as exc:
                    if isinstance(exc, docker_errors.NotFound):
                        raise
                    _raise_stream_error({"error": _api_message(exc)}, f"pull of {ref}")
                for chunk in stream:
                    _raise_stream_error(chunk, f"pull of {ref}")
                    status = str(chunk.get("status", ""))
                    if status:
                        layer = chunk.get("id")
                        emit(PushEvent("status", text=f"{layer}: {status}" if layer else status, layer=layer,
                                       elapsed=round(time.monotonic() - started, 3)))
        except KeyboardInterrupt:
            self._abort_stream(stream)
            raise errors.Interrupted(f"pull of {ref} interrupted") from None
        return self.inspect_image(ref)["Id"]

    # ---- filesystem export -------------------------------------------------------

    @contextlib.contextmanager
    def exported_filesystem(self, image: str, *, labels: dict[str, str] | None = None) -> Iterator[IO[bytes]]:
        """Yield a readable binary stream: the tar of a (never started) container's
        filesystem, i.e. the image's merged layers, streamed from the daemon in 1 MiB
        chunks so a 6 GB image is never held in memory. The container is removed on exit.
        """
        container_id = self._create(image, ["true"], environment=None, user=None, shm_size=None,
                                    ipc_mode=None, gpus=False, ports=None, labels=labels,
                                    network_mode="none", entrypoint=None, auto_remove=False)
        try:
            with self._translate(f"export the filesystem of {image}"):
                chunks = self._api.export(container_id, chunk_size=1 << 20)
            yield _ChunkReader(chunks, self)
        finally:
            self._remove_container(container_id)

    @contextlib.contextmanager
    def saved_image(self, image: str) -> Iterator[IO[bytes]]:
        """Yield a readable binary stream of ``docker save IMAGE`` (each layer's own tar, the
        config with its history, manifest.json), streamed in 1 MiB chunks: what
        `dlbase layers` reads to tell which files each layer adds or shadows."""
        self.inspect_image(image)  # a missing image is Missing here, not a 404 in mid-stream
        with self._translate(f"save {image}", missing=f"no image {image!r}"):
            chunks = self._api.get_image(image, chunk_size=1 << 20)
        yield _ChunkReader(iter(chunks), self)

    # ---- run -------------------------------------------------------------------

    def run(self, image: str, command: str | list[str] | None = None, *,
            environment: dict[str, str] | None = None, user: str | None = None,
            timeout: float = 600, shm_size: str | None = None, ipc_mode: str | None = None,
            gpus: bool = False, ports: dict[str, int | None] | None = None, detach: bool = False,
            labels: dict[str, str] | None = None, network_mode: str | None = None,
            entrypoint: str | list[str] | None = None) -> RunResult:
        """Run a command to completion and return its exit code and combined output.

        The container is always removed: after it exits, on timeout (it is killed and
        ``timed_out`` is set), on Ctrl-C (-> Interrupted) and on any error. With
        ``detach=True`` it is started with auto-remove and its ID returned at once.
        ``ports`` maps ``"8888/tcp"`` to a host port, or None for a free one.
        """
        container_id = self._create(image, command, environment=environment, user=user,
                                    shm_size=shm_size, ipc_mode=ipc_mode, gpus=gpus, ports=ports,
                                    labels=labels, network_mode=network_mode,
                                    entrypoint=entrypoint, auto_remove=detach)
        if detach:
            try:
                self._start(container_id)
            except BaseException:
                self._remove_container(container_id)
                raise
            return RunResult(exit_code=None, output="", container_id=container_id)
        try:
            self._start(container_id)
            exit_code = self._wait(container_id, timeout)
            output = self._logs(container_id)
            return RunResult(exit_code=exit_code, output=output, timed_out=exit_code is None,
                             container_id=container_id)
        except KeyboardInterrupt:
            raise errors.Interrupted(f"interrupted while running {image}") from None
        finally:
            self._remove_container(container_id)

    @contextlib.contextmanager
    def started(self, image: str, command: str | list[str] | None = None, *,
                environment: dict[str, str] | None = None, user: str | None = None,
                shm_size: str | None = None, ipc_mode: str | None = None, gpus: bool = False,
                ports: dict[str, int | None] | None = None, labels: dict[str, str] | None = None,
                network_mode: str | None = None, entrypoint: str | list[str] | None = None,
                ready_timeout: float = 10) -> Iterator[StartedContainer]:
        """Yield a running container (for testinfra, a Jupyter probe); removed on exit.

        The default command keeps the container alive (``sleep infinity``) so host-side
        checks can exec into it. Fails with the container's log when it exits at once.
        """
        if command is None and entrypoint is None:
            command = ["sleep", "infinity"]
        container_id = self._create(image, command, environment=environment, user=user,
                                    shm_size=shm_size, ipc_mode=ipc_mode, gpus=gpus, ports=ports,
                                    labels=labels, network_mode=network_mode,
                                    entrypoint=entrypoint, auto_remove=False)
        try:
            self._start(container_id)
            yield self._wait_running(container_id, image, ready_timeout)
        except KeyboardInterrupt:
            raise errors.Interrupted(f"interrupted while using a container of {image}") from None
        finally:
            self._remove_container(container_id)

    def exec(self, container: str, command: str | list[str], *, user: str | None = None,
             environment: dict[str, str] | None = None) -> RunResult:
        """Run a command inside a running container (e.g. one from :meth:`started`)."""
        with self._translate(f"exec in container {container}", missing=f"no container {container!r}"):
            exec_id = self._api.exec_create(container, command, user=user or "",
                                            environment=environment)
            output = self._api.exec_start(exec_id)
            exit_code = self._api.exec_inspect(exec_id).get("ExitCode")
        return RunResult(exit_code=exit_code, output=_decode(output), container_id=container)

    def logs(self, container: str) -> str:
        return self._logs(container)

    def read_file(self, container: str, path: str, *, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """The bytes of one regular file inside a container (running or stopped), read
        through the archive API, so it works whatever the image has (no ``cat`` needed).
        Missing when there is no such file."""
        import io
        import tarfile

        with self._translate(f"copy {path} out of container {container}",
                             missing=f"no file {path!r} in container {container!r}"):
            stream, _stat = self._api.get_archive(container, path)
            buf = io.BytesIO()
            for chunk in stream:
                buf.write(chunk)
                if buf.tell() > max_bytes + 1024 * 1024:
                    raise errors.DlbaseError(f"{path} in container {container} is larger than {max_bytes} bytes")
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise errors.Missing(f"{path} in container {container} is not a regular file")
            return handle.read()

    def _create(self, image: str, command: str | list[str] | None, *, environment: dict[str, str] | None,
                user: str | None, shm_size: str | None, ipc_mode: str | None, gpus: bool,
                ports: dict[str, int | None] | None, labels: dict[str, str] | None,
                network_mode: str | None, entrypoint: str | list[str] | None, auto_remove: bool) -> str:
        host_config = self._api.create_host_config(
            shm_size=shm_size, ipc_mode=ipc_mode, port_bindings=ports or None,
            network_mode=network_mode, auto_remove=auto_remove,
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])] if gpus else None)
        all_labels = {**(labels or {}), MANAGED_LABEL: "true"}
        with self._translate(f"create a container from {image}", missing=f"no image {image!r}"):
            created = self._api.create_container(
                image, command=command, environment=environment, user=user,
                ports=_exposed_ports(ports), labels=all_labels,
                host_config=host_config, entrypoint=entrypoint, detach=True)
        return created["Id"]

    def _start(self, container_id: str) -> None:
        with self._translate("start a container"):
            try:
                self._api.start(container_id)
            except docker_errors.APIError as exc:
                message = _api_message(exc)
                if "nvidia" in message or "could not select device driver" in message:
                    raise errors.Missing(f"GPU requested but the daemon cannot provide one: {message}",
                                         hint="install nvidia-container-toolkit, or run without GPUs") from None
                raise

    def _wait(self, container_id: str, timeout: float) -> int | None:
        """Exit code, or None (after killing the container) when ``timeout`` passed.

        docker-py implements the wait timeout as the HTTP read timeout, so a timeout is
        a requests exception (ReadTimeout, or ConnectionError wrapping urllib3's
        ReadTimeoutError depending on the adapter) -- told apart from a dead daemon by
        whether the daemon still answers a ping.
        """
        try:
            with self._translate("wait for a container"):
                try:
                    return int(self._api.wait(container_id, timeout=timeout)["StatusCode"])
                except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                    if not self._answers():
                        raise
                    if "timed out" not in str(exc).lower() and not isinstance(exc, requests.exceptions.Timeout):
                        raise
        except errors.DaemonUnavailable:
            raise
        with self._translate("stop a timed-out container"):
            with contextlib.suppress(docker_errors.APIError):
                self._api.kill(container_id)
        return None

    def _wait_running(self, container_id: str, image: str, ready_timeout: float) -> StartedContainer:
        deadline = time.monotonic() + ready_timeout
        while True:
            with self._translate("inspect a container"):
                info = self._api.inspect_container(container_id)
            state = info.get("State") or {}
            if state.get("Running"):
                return StartedContainer(id=container_id, name=info["Name"].lstrip("/"),
                                        ports=_published_ports(info))
            if state.get("Status") in ("exited", "dead") or time.monotonic() > deadline:
                raise errors.VerifyFailed(
                    f"container of {image} is {state.get('Status')} (exit {state.get('ExitCode')})",
                    details=self._logs(container_id).splitlines()[-LOG_TAIL_LINES:])
            time.sleep(0.1)

    def _logs(self, container_id: str) -> str:
        with self._translate("read container logs"):
            return _decode(self._api.logs(container_id, stdout=True, stderr=True))

    def _remove_container(self, container_id: str) -> None:
        """Best-effort forced removal; already-gone containers (auto-remove) are fine."""
        with contextlib.suppress(Exception):
            self._api.remove_container(container_id, force=True, v=True)

    # ---- cleanup ---------------------------------------------------------------

    def cleanup(self, label: str) -> CleanupReport:
        """Remove containers, then images, that carry ``label`` (``key`` or ``key=value``).

        Refuses labels outside the ``dlbase.`` namespace so it can never touch anything
        on the shared daemon that dlbase did not make. Images are removed newest first,
        so children go before the parents they were built on.
        """
        if not label.startswith("dlbase."):
            raise errors.InvalidInput(f"refusing to clean up by label {label!r}",
                                      hint="only dlbase.* labels can be cleaned up")
        removed_containers = []
        for summary in self.containers_with_label(label):
            self._remove_container(summary["Id"])
            removed_containers.append(summary["Id"])
        removed_images, kept = self._remove_images_children_first(
            [s["Id"] for s in sorted(self.images_with_label(label),
                                     key=lambda s: s.get("Created", 0), reverse=True)])
        return CleanupReport(containers=removed_containers, images=removed_images, kept=kept)

    def _remove_images_children_first(self, image_ids: list[str]) -> tuple[list[str], dict[str, str]]:
        """Remove images in passes, retrying those that still had children.

        "Created" has one-second resolution, so sorting cannot order a build's
        intermediate images (the classic builder's LABEL steps carry the labels too);
        the daemon answers 409 for a parent, which is retried after its children went.
        Images pruned along with a child (untagged parents) simply vanish.
        """
        removed: list[str] = []
        pending = list(image_ids)
        kept: dict[str, str] = {}
        while pending:
            kept = {}
            for image_id in pending:
                try:
                    with self._translate(f"remove image {image_id}", missing="gone"):
                        self._api.remove_image(image_id, force=True)
                    removed.append(image_id)
                except errors.Missing:
                    continue
                except errors.DaemonUnavailable:
                    raise
                except errors.DlbaseError as exc:
                    kept[image_id] = exc.message
            if len(kept) == len(pending):
                break  # no progress: what is left is used by something unlabelled
            pending = list(kept)
        return removed, kept


# --------------------------------------------------------------------------- push/pull/export

_PUSH_DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: (\d+)")
_UNREACHABLE_MARKERS = ("connection refused", "no such host", "i/o timeout", "dial tcp", "connection reset",
                        "eof", "no route to host", "tls handshake timeout", "server misbehaving")
_AUTH_MARKERS = ("unauthorized", "authentication required", "denied", "no basic auth credentials")


@dataclass(frozen=True)
class PushEvent:
    """One thing that happened during a push or pull, for a progress display.

    ``kind``: ``progress`` (bytes of one layer, ``current``/``total_bytes``), ``layer``
    (a layer finished: "Pushed", "Layer already exists", "Mounted from ..."), ``status``
    (any other line) or ``done`` (``digest`` set).
    """

    kind: str
    text: str = ""
    layer: str | None = None
    current: int | None = None
    total_bytes: int | None = None
    digest: str | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class PushResult:
    reference: str
    digest: str
    size: int | None
    layers: dict[str, str]
    seconds: float


def _raise_stream_error(chunk: dict[str, Any], what: str) -> None:
    """Raise the typed error for an ``error``/``errorDetail`` chunk of a push/pull stream."""
    if "error" not in chunk and "errorDetail" not in chunk:
        return
    message = str((chunk.get("errorDetail") or {}).get("message") or chunk.get("error") or "unknown error").strip()
    lower = message.lower()
    if any(marker in lower for marker in _AUTH_MARKERS):
        raise errors.RegistryError(f"{what} refused by the registry: {message}",
                                   hint="check the credentials (docker login, or DLBASE_REGISTRY_USER / "
                                        "DLBASE_REGISTRY_PASSWORD)")
    if any(marker in lower for marker in _UNREACHABLE_MARKERS):
        raise errors.Unreachable(f"{what} failed, the registry could not be reached: {message}",
                                 hint="is the registry running and reachable from the Docker daemon?")
    raise errors.RegistryError(f"{what} failed; the daemon reported: {message}",
                               hint="look at the registry's log (storage full or read-only? layer refused?)")


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for tarfile's streaming mode)."""

    def __init__(self, chunks: Iterator[bytes], engine: "Engine"):
        self._chunks = iter(chunks)
        self._engine = engine
        self._buf = memoryview(b"")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pos >= len(self._buf):
            try:
                self._buf, self._pos = memoryview(next(self._chunks)), 0
            except StopIteration:
                return 0
            except Exception as exc:  # noqa: BLE001 - classified below
                if _is_connection_error(exc):
                    raise self._engine._unavailable(exc, during="a filesystem export") from None
                raise
        n = min(len(buffer), len(self._buf) - self._pos)
        buffer[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


# --------------------------------------------------------------------------- helpers


def _import_result_id(raw: Any) -> str | None:
    """The image ID from the import API's JSON-lines answer (``{"status": "sha256:..."}``)."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    for line in reversed(text.strip().splitlines()):
        with contextlib.suppress(ValueError):
            status = json.loads(line).get("status", "")
            if isinstance(status, str) and status.startswith("sha256:"):
                return status
    return None


def _status_event(chunk: dict[str, Any], log: IO[str] | None, tail: deque[str], elapsed: float) -> BuildEvent:
    detail = chunk.get("progressDetail") or {}
    layer = chunk.get("id")
    status = str(chunk.get("status", ""))
    if detail.get("total"):
        return BuildEvent("progress", text=status, layer=layer, current=detail.get("current"),
                          total_bytes=detail.get("total"), elapsed=elapsed)
    line = f"{layer}: {status}" if layer else status
    _log_line(log, tail, line)
    return BuildEvent("status", text=line, layer=layer, elapsed=elapsed)


def _killed_by_signal(message: str) -> bool:
    """A step whose command died of a signal (exit code >= 128: 137 = SIGKILL), as when
    a stopping daemon kills the step's container."""
    found = re.search(r"returned a non-zero code: (\d+)", message)
    return found is not None and int(found.group(1)) >= 128


def _is_from_step(step_text: str | None) -> bool:
    match = _STEP_RE.match(step_text or "")
    return match is not None and match.group(3).split(" ", 1)[0].upper() == "FROM"


def _step_number(trace: _BuildTrace) -> int | None:
    if not trace.step_text:
        return None
    match = _STEP_RE.match(trace.step_text)
    return int(match.group(1)) if match else None


def _since(trace: _BuildTrace) -> float:
    return round(time.monotonic() - trace.started_at, 3)


def _is_step_container_of(summary: dict[str, Any], parent: str, trace: _BuildTrace) -> bool:
    started_wall = time.time() - (time.monotonic() - trace.started_at)
    image_id = str(summary.get("ImageID", "")).removeprefix("sha256:")
    return (image_id.startswith(parent.removeprefix("sha256:"))
            and float(summary.get("Created", 0)) >= started_wall - 2
            and str(summary.get("Command", "")).startswith("/bin/sh -c"))


def _exposed_ports(ports: dict[str, int | None] | None) -> list[int | tuple[int, str]] | None:
    """``{"8888/tcp": None}`` -> ``[(8888, "tcp")]``: docker-py appends "/tcp" to a plain
    string itself, so passing "8888/tcp" through would expose "8888/tcp/tcp" and the
    binding would silently not happen."""
    if not ports:
        return None
    exposed: list[int | tuple[int, str]] = []
    for key in ports:
        number, _, proto = str(key).partition("/")
        exposed.append((int(number), proto) if proto else int(number))
    return exposed


def _published_ports(info: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    result: dict[str, list[tuple[str, int]]] = {}
    for private, bindings in ((info.get("NetworkSettings") or {}).get("Ports") or {}).items():
        result[private] = [(b.get("HostIp", ""), int(b["HostPort"])) for b in bindings or []]
    return result


def _decode(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data or "")


def _log_line(log: IO[str] | None, tail: deque[str], line: str) -> None:
    tail.append(line)
    if log is not None:
        log.write(line + "\n")
        log.flush()


def _log_details(log_file: str | None) -> list[str]:
    return [f"full log: {log_file}"] if log_file else []


@contextlib.contextmanager
def _open_log(path: str | None) -> Iterator[IO[str] | None]:
    if not path:
        yield None
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        yield handle
