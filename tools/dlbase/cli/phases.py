"""A ticking phase line: what the tool is waiting on, how long it has, and the bytes where
they are known, printed while nothing else is.

Why: after a build's last step BuildKit exports, compresses, unpacks and names the image,
and says only when each phase *ends* (rawjson gives no bytes for them); a push or a pull
of a 3 GB layer gives bytes but the CLI prints them only now and then. A terminal that
shows nothing for minutes reads as a hang. So the progress displays open a phase when it
starts, and a background thread prints ``<phase> ... 40s (1.2 of 5.9 GB)`` every
``every`` seconds for as long as it stays open and no other line was printed.

:meth:`PhaseTicker.due` is pure (an injectable clock), so what is printed when is
unit-tested without threads; :meth:`PhaseTicker.run` is the thread.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

#: Seconds of silence before the first tick, and between ticks.
EVERY_S = 10.0


def human_bytes(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


class PhaseTicker:
    """The open phase (one at a time) and when the last line was printed."""

    def __init__(self, line: Callable[[str], None], *, every: float = EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self._line, self._every, self._clock = line, every, clock
        self._lock = threading.Lock()
        self.phase: str | None = None
        self._opened = 0.0
        self._quiet_since = clock()
        self._done: int | None = None
        self._total: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self, phase: str) -> None:
        """Open ``phase`` (the one before it, if any, is simply replaced)."""
        with self._lock:
            if phase != self.phase:
                self.phase, self._opened = phase, self._clock()
                self._done = self._total = None
                self._quiet_since = self._opened

    def progress(self, done: int | None, total: int | None) -> None:
        """Bytes of the open phase so far (either may be unknown)."""
        with self._lock:
            self._done, self._total = done, total

    def end(self, phase: str | None = None) -> float | None:
        """Close the open phase (only if it is ``phase``, when named); its seconds."""
        with self._lock:
            if self.phase is None or (phase is not None and phase != self.phase):
                return None
            took = self._clock() - self._opened
            self.phase = None
            return took

    def printed(self) -> None:
        """Another line was printed: the silence starts again."""
        with self._lock:
            self._quiet_since = self._clock()

    def due(self) -> str | None:
        """The tick line to print now, or None (no phase open, or not silent long enough)."""
        with self._lock:
            now = self._clock()
            if self.phase is None or now - self._quiet_since < self._every:
                return None
            self._quiet_since = now
            text = f"{self.phase} ... {now - self._opened:.0f}s"
            if self._done is not None and self._total:
                text += f" ({human_bytes(self._done)} of {human_bytes(self._total)})"
            elif self._done:
                text += f" ({human_bytes(self._done)})"
            return text

    # -- the thread -------------------------------------------------------------------
    def run(self) -> "PhaseTicker":
        """Start the thread that prints :meth:`due` lines (a daemon thread: never holds the exit)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="phase-ticker", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.end()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            text = self.due()
            if text is not None:
                self._line(text)


# buildx's plain progress (what `dlbase bake` reads): "#12 exporting layers", then
# "#12 exporting layers 245.1s done"; the same for "naming to ...", "unpacking to ...".
_PLAIN_PHASE = re.compile(r"^#\d+ (?P<name>(?:exporting|naming to|unpacking to|writing image|sending tarball|"
                          r"importing to|preparing layers)\b.*?)(?P<end> (?:\d+\.\d+s )?done)?$")


def plain_phase(line: str) -> tuple[str, bool] | None:
    """(phase, ended) for a plain-progress line that opens or closes a builder phase."""
    match = _PLAIN_PHASE.match(line.rstrip())
    if not match:
        return None
    return match["name"], match["end"] is not None
