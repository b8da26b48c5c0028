"""Progress for long work: wheel downloads and docker build steps, on stderr.

On a terminal it shows live bars; in a log (CI) it prints one line per step and per
finished download, so the log stays readable and every line has the elapsed time.
"""

from __future__ import annotations

import time

from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from dlbase.cli import ui
from dlbase.engine import BuildEvent
from dlbase.build.wheelhouse import FillEvent


class BuildProgress:
    """Receives FillEvent and BuildEvent values and shows them; `quiet` shows nothing."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False):
        self.quiet = quiet
        self.verbose = verbose
        self.tty = ui.err.is_terminal
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}
        self._reused = 0
        self._downloaded = 0
        self._bytes = 0
        self._wheels_summarised = False
        self._pending_step: BuildEvent | None = None  # printed once we know if it was cached
        self._steps = 0
        self._cached_steps = 0

    def _line(self, text: str) -> None:
        if not self.quiet:
            ui.err.print(f"[dim]{time.monotonic() - self.started:7.1f}s[/dim] {text}", markup=True,
                         highlight=False)

    def say(self, text: str) -> None:
        self._line(escape(text))

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
        elif ev.kind == "done":
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
               "exporting to oci image format", "exporting cache", "importing cache", "loading the built image")
    return any(m in line for m in markers)
