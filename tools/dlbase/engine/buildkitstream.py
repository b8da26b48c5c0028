"""Reading `docker buildx build --progress rawjson`: the same :class:`BuildEvent` values the
classic builder's parser gives, so build code and the progress display do not care which
builder ran.

Pure: no docker import, no daemon, no subprocess. buildx 0.13 writes the stream on stderr
as *indented* JSON objects (``{"vertexes": [...], "statuses": [...], "logs": [...]}``,
each spread over many lines, the closing brace alone in column 0), and after a failure
plain text (the Dockerfile excerpt, ``ERROR: failed to solve: ...``). So the parser is
fed stderr line by line and joins the lines of one object itself; text outside an object
is kept as builder output. Unit-tested on streams recorded from a real buildx
(``tests/unit/data/buildkit-streams/``).

What a vertex is: one node of BuildKit's graph. A Dockerfile instruction that makes a
filesystem (FROM, RUN, COPY, ADD) is a vertex named ``[2/9] RUN ...`` (``[stage 2/9]`` in
a named stage); ARG/ENV/LABEL are not vertices. ``[internal] ...`` and ``exporting ...``
vertices are the builder's own work.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from dlbase.core import errors
from dlbase.engine.buildstream import FAILED_STEP_HINT, LOG_TAIL_LINES, BuildEvent

DISK_FULL_HINT = ("the disk under the daemon (or the project's .dlbase/) is full: BuildKit's cache is the "
                  "largest thing it keeps (`docker buildx du`; `docker builder prune` empties it; "
                  "DLBASE_BUILDKIT_KEEP_STORAGE=10GB before tools/host/setup.sh caps it), then build again")

# "[2/9] RUN ...", "[ 2/19] RUN ..." (padded when the total has two digits), "[stage 2/9] ...".
_STEP_RE = re.compile(r"^\[(?:(?P<stage>[^\]\s]+) )?\s*(?P<step>\d+)/(?P<total>\d+)\] (?P<text>.*)$", re.S)
_MANIFEST_RE = re.compile(r"^exporting manifest (sha256:[0-9a-f]{64})$")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CANCELED = "context canceled"


@dataclass
class Vertex:
    """What the stream said about one vertex so far."""

    digest: str
    name: str
    announced: bool = False  # a step/cached event was emitted for it
    cached: bool = False
    completed: bool = False
    error: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    partial: str = ""  # a log chunk's unfinished last line

    @property
    def step(self) -> tuple[int, int, str] | None:
        """(step, total, instruction) for a Dockerfile step, None for the builder's own vertices."""
        match = _STEP_RE.match(self.name)
        return (int(match["step"]), int(match["total"]), match["text"]) if match else None


@dataclass
class BuildKitTrace:
    """What the stream told us so far: the vertices, the running step, the failure."""

    started_at: float
    vertexes: dict[str, Vertex] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # vertex digests in the order they started
    step_text: str | None = None  # the latest step that started: "[3/9] RUN ..."
    failed: Vertex | None = None  # the first vertex with an error other than a cancel
    error_text: list[str] = field(default_factory=list)  # buildx's closing text (ERROR: ...)
    manifest: str | None = None  # the digest the exporter says it wrote
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))  # every line

    @property
    def started(self) -> bool:
        return self.step_text is not None

    def steps(self) -> list[Vertex]:
        return [self.vertexes[d] for d in self.order if self.vertexes[d].step]

    @property
    def running_text(self) -> str | None:
        """The step still at work: the latest started and not completed one, else the latest
        started. Why not simply the latest started: stages run side by side, and a step of
        another stage can start (and even finish) while a long one is still running."""
        running = [v for v in self.steps() if not v.completed]
        return running[-1].name if running else self.step_text


class BuildKitStreamParser:
    """Turns buildx's rawjson stderr, line by line, into :class:`BuildEvent` values and a
    :class:`BuildKitTrace`. ``log`` receives the build's text as it arrives (step lines,
    every log line, errors); ``log_file`` is only named in errors; ``clock`` is injectable
    so recorded streams replay deterministically."""

    def __init__(self, *, log: IO[str] | None = None, log_file: str | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._log = log
        self.log_file = log_file
        self.trace = BuildKitTrace(started_at=clock())
        self._pending: list[str] = []  # lines of a JSON object not yet closed
        self._seen_statuses: set[str] = set()
        self._open_statuses: set[str] = set()

    def elapsed(self) -> float:
        return round(self._clock() - self.trace.started_at, 3)

    def feed_line(self, line: str) -> list[BuildEvent]:
        """The events of one stderr line (most lines are part of an object not yet closed)."""
        line = line.rstrip("\n")
        if self._pending or line.startswith("{"):
            self._pending.append(line)
            if line != "}" and not (len(self._pending) == 1 and line.endswith("}")):
                return []
            text = "\n".join(self._pending)
            try:
                obj = json.loads(text)
            except ValueError:
                if line == "}":  # a closing brace that did not close: not JSON after all
                    self._pending = []
                    return [self._text(part) for part in text.splitlines() if part.strip()]
                return []
            self._pending = []
            return self.feed(obj) if isinstance(obj, dict) else []
        if not line.strip():
            return []
        return [self._text(line)]

    def feed(self, obj: dict[str, Any]) -> list[BuildEvent]:
        """The events of one decoded rawjson object."""
        elapsed = self.elapsed()
        events: list[BuildEvent] = []
        for raw in obj.get("vertexes") or []:
            events.extend(self._vertex(raw, elapsed))
        for raw in obj.get("statuses") or []:
            event = self._status(raw, elapsed)
            if event is not None:
                events.append(event)
        for raw in obj.get("logs") or []:
            events.extend(self._logs(raw, elapsed))
        return events

    def close(self) -> list[BuildEvent]:
        """Flush what an ended stream left half-read (an unterminated log line, an open object)."""
        events = []
        for vertex in self.trace.vertexes.values():
            if vertex.partial:
                events.append(self._output(vertex, vertex.partial, self.elapsed()))
                vertex.partial = ""
        if self._pending:
            events.extend(self._text(part) for part in self._pending if part.strip())
            self._pending = []
        return events

    def note(self, text: str) -> BuildEvent:
        """A line of the engine's own (what it does after buildx), logged like the build's."""
        self._record(text)
        return BuildEvent("output", text=text, elapsed=self.elapsed())

    def failure(self, message: str, *, hint: str | None = None, step: str | None = None) -> errors.BuildFailed:
        """A BuildFailed naming the failing (else the latest) step, with its log tail;
        ``step`` names a stage after buildx instead (the load), whose step did not fail.
        A full disk gets the hint that says what to free, whoever hit it."""
        trace = self.trace
        if step is None:
            step = trace.failed.name if trace.failed else trace.step_text
        tail = list(trace.failed.tail) if trace.failed else list(trace.tail)
        if "no space left on device" in message:
            hint = DISK_FULL_HINT
        return errors.BuildFailed(message, step=step, log_tail=tail, log_file=self.log_file, hint=hint)

    def result_failure(self, returncode: int) -> errors.BuildFailed:
        """What a buildx that exited non-zero means: the failing step's error, else buildx's words."""
        trace = self.trace
        if trace.failed is not None:
            return self.failure(f"build failed at {trace.failed.name}: {trace.failed.error}", hint=FAILED_STEP_HINT)
        said = [line.removeprefix("ERROR: ") for line in trace.error_text if line.startswith("ERROR:")]
        reason = said[-1] if said else (trace.error_text[-1] if trace.error_text else f"buildx exited {returncode}")
        return self.failure(f"build failed at {trace.step_text or 'start'}: {reason}", hint=FAILED_STEP_HINT)

    # ---- internals ----------------------------------------------------------------

    def _record(self, text: str) -> None:
        self.trace.tail.append(text)
        if self._log is not None:
            self._log.write(text + "\n")
            self._log.flush()

    def _text(self, line: str) -> BuildEvent:
        """A plain line outside the JSON objects: buildx's own error report."""
        text = _ANSI_RE.sub("", line)
        self.trace.error_text.append(text)
        self._record(text)
        step = self._current_step_number()
        return BuildEvent("output", text=text, step=step, elapsed=self.elapsed())

    def _vertex(self, raw: dict[str, Any], elapsed: float) -> list[BuildEvent]:
        trace = self.trace
        digest = str(raw.get("digest", ""))
        vertex = trace.vertexes.get(digest)
        if vertex is None:
            vertex = trace.vertexes[digest] = Vertex(digest=digest, name=str(raw.get("name", "")))
        events: list[BuildEvent] = []
        step = vertex.step
        if raw.get("started") and digest not in trace.order:
            trace.order.append(digest)
        if raw.get("cached"):
            vertex.cached = True
        if not step and raw.get("started") and not vertex.announced and vertex.name.startswith(("exporting", "importing")):
            vertex.announced = True  # exporter and cache import: seconds of work outside the steps, worth a line
            self._record(vertex.name)
            events.append(BuildEvent("output", text=vertex.name, elapsed=elapsed))
            events.append(BuildEvent("phase", text=vertex.name, layer=digest, elapsed=elapsed))
        if step and raw.get("started") and not vertex.announced:
            # As the classic builder does: a step line, then (for a cache hit) a cached
            # line. A FROM that turns "cached" later (its image was already there) is no
            # cache hit of a build step, as with the classic builder.
            vertex.announced = True
            trace.step_text = vertex.name
            number, total, text = step
            self._record(f"{'CACHED ' if vertex.cached else ''}{vertex.name}")
            events.append(BuildEvent("step", text=text, step=number, total=total, elapsed=elapsed))
            if vertex.cached:
                events.append(BuildEvent("cached", text=text, step=number, total=total, elapsed=elapsed))
        if raw.get("error") and vertex.error is None:
            vertex.error = str(raw["error"]).strip()
            self._record(f"ERROR: {vertex.name}: {vertex.error}")
            if trace.failed is None and CANCELED not in vertex.error:
                trace.failed = vertex
                vertex.tail.append(f"ERROR: {vertex.error}")
        if raw.get("completed"):
            vertex.completed = True
        return events

    def _status(self, raw: dict[str, Any], elapsed: float) -> BuildEvent | None:
        ident = str(raw.get("id", ""))
        manifest = _MANIFEST_RE.match(ident)
        if manifest:
            self.trace.manifest = manifest.group(1)
        if (raw.get("started") and not raw.get("completed") and not raw.get("total") and ident
                and ident not in self._open_statuses):
            # A phase starts (buildx says nothing more until it ends, for the exporter's
            # ones: no bytes): the display ticks it while it is open.
            self._open_statuses.add(ident)
            return BuildEvent("phase", text=ident, layer=ident, elapsed=elapsed)
        if raw.get("completed") and ident:
            if ident in self._seen_statuses:
                return None  # one line per finished status, not one per tick
            self._seen_statuses.add(ident)
            took = seconds_between(raw.get("started"), raw.get("completed"))
            text = f"{ident} done" + (f" ({took:.1f}s)" if took is not None else "")
            self._record(text)
            return BuildEvent("status", text=text, layer=ident, elapsed=elapsed)
        if raw.get("total"):
            return BuildEvent("progress", text=str(raw.get("name") or ident), layer=ident,
                              current=raw.get("current"), total_bytes=raw.get("total"), elapsed=elapsed)
        return None

    def _logs(self, raw: dict[str, Any], elapsed: float) -> list[BuildEvent]:
        digest = str(raw.get("vertex", ""))
        vertex = self.trace.vertexes.get(digest)
        if vertex is None:
            vertex = self.trace.vertexes[digest] = Vertex(digest=digest, name="")
        try:
            data = base64.b64decode(str(raw.get("data", ""))).decode("utf-8", errors="replace")
        except ValueError:
            return []
        text = vertex.partial + _ANSI_RE.sub("", data).replace("\r\n", "\n")
        lines = text.split("\n")
        vertex.partial = lines.pop()  # what follows the last newline: the next chunk continues it
        return [self._output(vertex, line, elapsed) for line in lines if line.strip()]

    def _output(self, vertex: Vertex, line: str, elapsed: float) -> BuildEvent:
        line = line.rsplit("\r", 1)[-1]  # a progress bar's last frame
        vertex.tail.append(line)
        self._record(line)
        step = vertex.step
        return BuildEvent("output", text=line, step=step[0] if step else None, elapsed=elapsed)

    def _current_step_number(self) -> int | None:
        match = _STEP_RE.match(self.trace.step_text or "")
        return int(match["step"]) if match else None



def seconds_between(started: Any, completed: Any) -> float | None:
    """Seconds between two of BuildKit's RFC 3339 timestamps (nanoseconds, ``Z``)."""
    try:
        return round(_instant(str(completed)) - _instant(str(started)), 3)
    except ValueError:
        return None


def _instant(stamp: str) -> float:
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", stamp)
    if not match:
        raise ValueError(stamp)
    zone = "+00:00" if match[3] == "Z" else match[3]
    whole = dt.datetime.fromisoformat(match[1] + zone).timestamp()
    return whole + float(f"0.{match[2] or 0}")
