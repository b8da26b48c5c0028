"""Progress for long work: wheel downloads and docker build steps, on stderr.

On a terminal it shows live bars; in a log (CI) it prints one line per step and per
finished download, so the log stays readable and every line has the elapsed time. The
builder's own phases after the last step (export, compression, unpack, naming) tick
(:mod:`dlbase.cli.phases`) and print their seconds when they end.
"""

from __future__ import annotations

import time

from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from dlbase.cli import ui
from dlbase.cli.phases import EVERY_S, PhaseTicker
from dlbase.engine import BuildEvent, TransferEvent
from dlbase.build.wheelhouse import FillEvent


#: A phase that ends is given its own line when it took at least this long.
PHASE_SHOWN_S = 2.0


class BuildProgress:
    """Receives FillEvent and BuildEvent values and shows them; `quiet` shows nothing."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False, clock=time.monotonic, ticking: bool = True,
                 tick_every: float = EVERY_S):
        """``clock``, ``ticking`` (False: no ticker thread, the caller asks
        ``self.ticker.due()``) and ``tick_every`` let a recorded stream be replayed in a test."""
        self.quiet = quiet
        self.verbose = verbose
        self.tty = ui.err.is_terminal
        self._clock, self._ticking = clock, ticking
        self.started = clock()
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}
        self._reused = 0
        self._downloaded = 0
        self._bytes = 0
        self._wheels_summarised = False
        self._pending_step: BuildEvent | None = None  # printed once we know if it was cached
        self._steps = 0
        self._cached_steps = 0
        self._built = False  # buildx is done: what follows is the engine's own phases
        self.ticker = PhaseTicker(self.tick_line, clock=clock, every=tick_every)

    def _line(self, text: str) -> None:
        if not self.quiet:
            self.ticker.printed()
            ui.err.print(f"[dim]{self._clock() - self.started:7.1f}s[/dim] {text}", markup=True,
                         highlight=False)

    def tick_line(self, text: str) -> None:
        self._line(f"  [yellow]{escape(text)}[/yellow]")

    def phase(self, text: str) -> None:
        """A phase of the tool's own began (bake's plain lines, the engine's read-back): it ticks."""
        if not self.quiet:
            if self._ticking:
                self.ticker.run()
            self.ticker.start(text)

    def phase_end(self, text: str | None = None) -> None:
        """The phase (``text``, or whichever is open) ended: its seconds, when it took some."""
        took = self.ticker.end(text)
        if took is not None and took >= PHASE_SHOWN_S:
            self._line(f"  {escape(text or 'phase')} done ({took:.1f}s)")

    def say(self, text: str) -> None:
        """A message of the build's own; after the last step (the read-back, tagging) it
        opens a phase that ticks, as the exporter's do."""
        self._line(escape(text))
        if self._built:
            self.phase(text[:80])

    def close(self) -> None:
        self.ticker.stop()

    def event(self, ev: BuildEvent | FillEvent) -> None:
        """The one callback a build takes: wheelhouse events, then the build's own."""
        if isinstance(ev, FillEvent):
            self.wheel(ev)
        else:
            self.build(ev)

    # -- wheels ---------------------------------------------------------------------
    def wheel(self, ev: FillEvent) -> None:
        if self.quiet:
            return
        if ev.state == "reused":
            self._reused += 1
            return
        if self.tty:
            if self._progress is None:
                self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                          TransferSpeedColumn(), TimeElapsedColumn(), console=ui.err,
                                          transient=True)
                self._progress.start()
            task = self._tasks.get(ev.filename)
            if task is None:
                task = self._progress.add_task(f"{ev.index}/{ev.count} {ev.filename[:48]}", total=ev.bytes_total)
                self._tasks[ev.filename] = task
            self._progress.update(task, completed=ev.bytes_done, total=ev.bytes_total)
        if ev.state == "done":
            self._downloaded += 1
            self._bytes += ev.bytes_done
            if self._progress is not None and ev.filename in self._tasks:
                self._progress.remove_task(self._tasks.pop(ev.filename))
            size = f"{ev.bytes_done / 2**20:.0f} MiB"
            self._line(f"downloaded [{ev.index}/{ev.count}] {ev.filename} ({size}, sha256 checked)")

    def wheels_done(self) -> None:
        if self._wheels_summarised:
            return
        self._wheels_summarised = True
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if not self.quiet:
            self._line(f"wheelhouse ready: {self._reused} wheel(s) reused, {self._downloaded} downloaded "
                       f"({self._bytes / 2**30:.2f} GiB)")

    # -- docker build ---------------------------------------------------------------
    def build(self, ev: BuildEvent) -> None:
        """A step's line waits for the step's next event, which says whether it was a
        layer-cache hit ("(cached)") or is running; the builder sends that at once."""
        if self.quiet:
            return
        self.wheels_done()
        if ev.kind == "cached":
            self._cached_steps += 1
            self._step_line(ev, cached=True)
            self._pending_step = None
            return
        self.flush_step()
        if ev.kind == "step":
            self._steps += 1
            self._pending_step = ev
        elif ev.kind == "progress" and ev.total_bytes:
            if self.verbose:
                self._line(f"  layer {ev.layer}: {ev.current or 0}/{ev.total_bytes} bytes")
        elif ev.kind == "output":
            text = ev.text.rstrip()
            if text and (self.verbose or _interesting(text)):
                self._line(f"  [dim]{escape(text[:200])}[/dim]")  # a build log line is text, not markup
        elif ev.kind == "phase":
            self.phase(ev.text)
        elif ev.kind == "status" and ev.layer:
            self.phase_end(ev.layer)
        elif ev.kind == "done":
            self.ticker.end()
            self._built = True
            self._line(f"built {ev.image_id} ({self._cached_steps} of {self._steps} steps from the layer cache)")

    def flush_step(self) -> None:
        """Print a step still waiting for its verdict (e.g. when the build stops)."""
        if self._pending_step is not None and not self.quiet:
            self._step_line(self._pending_step, cached=False)
        self._pending_step = None

    def _step_line(self, ev: BuildEvent, *, cached: bool) -> None:
        mark = " [green](cached)[/green]" if cached else ""
        text = escape(ev.text[:150])
        self._line(f"[bold]step {ev.step}/{ev.total}[/bold]{mark} {text}")


def _interesting(line: str) -> bool:
    """Lines worth showing without --verbose: cache hits, pip's summary, failures."""
    markers = ("Successfully installed", "ERROR", "error:", "No broken requirements",
               "exporting to oci image format", "exporting to image", "exporting cache", "importing cache", "loading the built image")
    return any(m in line for m in markers)


#: A layer's byte progress is printed at most this often (the phase line sums them all).
LAYER_BYTES_EVERY_S = 5.0


class TransferProgress:
    """A push or a pull: one line per message and finished layer, a layer's bytes at most
    every :data:`LAYER_BYTES_EVERY_S`; every message opens a
    phase that ticks while it lasts, with the bytes of its layers summed where the
    stream gives them (a 3 GB layer's upload, a conversion, a pull's download and unpack)."""

    def __init__(self, quiet: bool, *, clock=time.monotonic, ticking: bool = True):
        self.quiet = quiet
        self._clock, self._ticking = clock, ticking
        self.started = clock()
        self._bytes: dict[str, tuple[int, int]] = {}
        self._last: dict[str, float] = {}
        self.ticker = PhaseTicker(lambda text: self._print(f"  [yellow]{escape(text)}[/yellow]"), clock=clock)

    def _print(self, text: str) -> None:
        if not self.quiet:
            self.ticker.printed()
            ui.err.print(f"[dim]{self._clock() - self.started:7.1f}s[/dim] {text}", markup=True, highlight=False)

    def say(self, text: str) -> None:
        self._print(escape(text))
        if not self.quiet:
            if self._ticking:
                self.ticker.run()
            self._bytes.clear()
            self.ticker.start(text[:80])

    def event(self, ev: TransferEvent) -> None:
        if ev.kind == "progress" and ev.total_bytes:
            self._bytes[f"{ev.text.split()[0]}:{ev.layer}"] = (ev.current or 0, ev.total_bytes)
            by_kind = [v for k, v in self._bytes.items() if k.startswith(ev.text.split()[0] + ":")]
            self.ticker.progress(sum(c for c, _t in by_kind), sum(t for _c, t in by_kind))
            now = self._clock()
            if now - self._last.get(ev.layer or "", float("-inf")) >= LAYER_BYTES_EVERY_S:  # a layer's own bytes
                self._last[ev.layer or ""] = now
                self._print(f"  {ev.layer}: {escape(ev.text)} {ev.current or 0:,}/{ev.total_bytes:,} bytes")
        elif ev.kind == "layer":
            self._print(f"  {ev.layer}: {escape(ev.text)}")
        elif ev.kind == "status" and ev.layer is None:
            self._print(f"  {escape(ev.text)}")
        elif ev.kind == "done":
            self.ticker.end()

    def close(self) -> None:
        self.ticker.stop()
