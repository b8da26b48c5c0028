"""Reading the classic builder's JSON stream: events for a progress display, the steps,
the objects the build created, and what a failure was.

Pure: no docker import, no daemon. :class:`BuildStreamParser` is fed the decoded chunks
exactly as the daemon sends them (``{"stream": ...}``, ``{"status": ...}``,
``{"aux": {"ID": ...}}``, ``{"errorDetail": ...}``), so it is unit-tested on streams
recorded from a real daemon (``tests/unit/data/build-streams/``).

The classic builder labels none of its intermediate containers or per-step images, so
reading them off the stream is the only reliable way to know which ones a build made
(and may remove after a failure).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from dlbase.core import errors

LOG_TAIL_LINES = 20
# What pip and uv print when --require-hashes rejects a wheel.
HASH_ERRORS = ("DO NOT MATCH THE HASHES", "Hash mismatch for")
FAILED_STEP_HINT = ("the last lines of the build log are listed with this error (its details under --json); "
                    "fix the Dockerfile step or its inputs")

_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_RUNNING_IN_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
_LAYER_RE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_USING_CACHE = " ---> Using cache"
_BUILT_RE = re.compile(r"^Successfully built ([0-9a-f]{12,64})$")
# The classic builder's words, and BuildKit's ("did not complete successfully: exit code: 3").
_EXIT_CODE_RE = re.compile(r"(?:returned a non-zero code|did not complete successfully: exit code): (\d+)")
# RUN output on stderr arrives wrapped in terminal colour codes; logs and tails want text.
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class BuildEvent:
    """One thing that happened during a build, for a progress display.

    ``kind`` is one of:
      ``step``      a new Dockerfile instruction started (``step``/``total``/``text``)
      ``output``    a line the build printed (RUN output, builder messages)
      ``progress``  pull/download progress of a layer (``layer``, ``current``, ``total``)
      ``status``    any other status line (pull "Pulling fs layer", "Digest: ...")
      ``cached``    the current step (``step``/``total``/``text``) was a layer-cache hit
      ``phase``     a phase of the builder's own began (``text``: "exporting layers",
                    "unpacking to ...", "naming to ..."; ``layer``: its id); it ends with
                    the ``status`` event of the same ``layer`` ("... done (12.3s)")
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


@dataclass
class BuildTrace:
    """What the stream told us so far: the current step and the objects this build made."""

    started_at: float
    containers: list[str] = field(default_factory=list)  # every "Running in <id>"
    created_images: list[str] = field(default_factory=list)  # committed by this build (no FROM, no cache hit)
    chain: list[str] = field(default_factory=list)  # every " ---> id" in order (incl. FROM, cache)
    step_text: str | None = None  # "Step 3/7 : RUN ..."
    step_cached: bool = False  # the current step printed " ---> Using cache"
    image_id: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    stage_starts: list[int] = field(default_factory=list)  # len(created_images) at each FROM step

    @property
    def earlier_stage_images(self) -> list[str]:
        """What this build committed for stages before the last (stage "sources"): the image
        never holds them, and the classic builder leaves them as dangling images."""
        return self.created_images[:self.stage_starts[-1]] if len(self.stage_starts) > 1 else []

    @property
    def step_number(self) -> int | None:
        match = _STEP_RE.match(self.step_text or "")
        return int(match.group(1)) if match else None

    @property
    def started(self) -> bool:
        """Whether the builder got as far as a first step."""
        return bool(self.step_text or self.chain)


class BuildStreamParser:
    """Turns build-stream chunks into :class:`BuildEvent` values and a :class:`BuildTrace`.

    ``log`` (optional) receives every text line as it arrives; ``log_file`` is only
    named in errors. ``clock`` is injectable so recorded streams replay deterministically.
    """

    def __init__(self, *, log: IO[str] | None = None, log_file: str | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._log = log
        self.log_file = log_file
        self.trace = BuildTrace(started_at=clock())

    def elapsed(self) -> float:
        return round(self._clock() - self.trace.started_at, 3)

    def feed(self, chunk: dict[str, Any]) -> list[BuildEvent]:
        """The events of one chunk. An error chunk raises :class:`~dlbase.core.errors.BuildFailed`
        naming the step, with the log tail (see :func:`failure_kind` for what it was)."""
        elapsed = self.elapsed()
        if "error" in chunk or "errorDetail" in chunk:
            message = str((chunk.get("errorDetail") or {}).get("message") or chunk.get("error") or "").strip()
            self._record(f"ERROR: {message}")
            raise self.failure(f"build failed at {self.trace.step_text or 'start'}: {message}",
                               hint=FAILED_STEP_HINT)
        if "aux" in chunk:
            aux_id = (chunk.get("aux") or {}).get("ID")
            if aux_id:
                self.trace.image_id = aux_id
            return []
        if "stream" in chunk:
            events = []
            for text in _ANSI_RE.sub("", str(chunk["stream"])).splitlines():
                if not text.strip():
                    continue  # the builder separates steps with blank lines
                self._record(text)
                events.append(self._classify(text, elapsed))
            return events
        if "status" in chunk:
            return [self._status(chunk, elapsed)]
        return []

    def failure(self, message: str, *, hint: str | None = None) -> errors.BuildFailed:
        """A BuildFailed carrying this build's step, log tail and log file."""
        return errors.BuildFailed(message, step=self.trace.step_text, log_tail=list(self.trace.tail),
                                  log_file=self.log_file, hint=hint)

    def finish(self) -> str:
        """The image ID the stream named (short or full); BuildFailed when it named none
        (a stream that simply stopped)."""
        if self.trace.image_id is None:
            raise self.failure("build stream ended without an image ID")
        return self.trace.image_id

    # ---- internals ----------------------------------------------------------------

    def _record(self, text: str) -> None:
        self.trace.tail.append(text)
        if self._log is not None:
            self._log.write(text + "\n")
            self._log.flush()

    def _classify(self, text: str, elapsed: float) -> BuildEvent:
        """Classify one builder line and record what it says about created objects."""
        trace = self.trace
        step = _STEP_RE.match(text)
        if step:
            trace.step_text = text
            trace.step_cached = False
            if is_from_step(text):
                trace.stage_starts.append(len(trace.created_images))
            return BuildEvent("step", text=step.group(3), step=int(step.group(1)),
                              total=int(step.group(2)), elapsed=elapsed)
        running = _RUNNING_IN_RE.match(text)
        if running:
            trace.containers.append(running.group(1))
        elif text.startswith(_USING_CACHE):
            trace.step_cached = True
            step_match = _STEP_RE.match(trace.step_text or "")
            if step_match:
                return BuildEvent("cached", text=step_match.group(3), step=int(step_match.group(1)),
                                  total=int(step_match.group(2)), elapsed=elapsed)
        layer = _LAYER_RE.match(text)
        if layer:
            trace.chain.append(layer.group(1))
            # FROM's image and cache hits existed before this build: never ours to remove.
            if not trace.step_cached and not is_from_step(trace.step_text):
                trace.created_images.append(layer.group(1))
        built = _BUILT_RE.match(text)
        if built and trace.image_id is None:
            trace.image_id = built.group(1)
        return BuildEvent("output", text=text, step=trace.step_number, elapsed=elapsed)

    def _status(self, chunk: dict[str, Any], elapsed: float) -> BuildEvent:
        detail = chunk.get("progressDetail") or {}
        layer = chunk.get("id")
        status = str(chunk.get("status", ""))
        if detail.get("total"):
            return BuildEvent("progress", text=status, layer=layer, current=detail.get("current"),
                              total_bytes=detail.get("total"), elapsed=elapsed)
        text = f"{layer}: {status}" if layer else status
        self._record(text)
        return BuildEvent("status", text=text, layer=layer, elapsed=elapsed)


def is_from_step(step_text: str | None) -> bool:
    match = _STEP_RE.match(step_text or "")
    return match is not None and match.group(3).split(" ", 1)[0].upper() == "FROM"


def step_exit_code(message: str) -> int | None:
    """The exit code of a failed RUN step, from either builder's error message."""
    found = _EXIT_CODE_RE.search(message)
    return int(found.group(1)) if found else None


def killed_by_signal(message: str) -> bool:
    """A step whose command died of a signal (exit code >= 128: 137 = SIGKILL), as when a
    stopping daemon kills the step's container: worth asking whether the daemon is gone."""
    code = step_exit_code(message)
    return code is not None and code >= 128


def hash_mismatch(log_lines: list[str]) -> bool:
    """pip's or uv's ``--require-hashes`` refused a wheel (its sha256 is not one the lock pins)."""
    return any(marker in line for line in log_lines for marker in HASH_ERRORS)


def failure_kind(failure: errors.BuildFailed) -> str:
    """What a failed build was, from its error and log tail: ``hash-mismatch`` (pip refused
    a wheel), ``killed`` (the step died of a signal: maybe the daemon is going away) or
    ``step`` (an ordinary failing step)."""
    if hash_mismatch(failure.log_tail):
        return "hash-mismatch"
    if killed_by_signal(failure.message):
        return "killed"
    return "step"
