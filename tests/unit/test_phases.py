"""No silent minutes: the ticking phase line (dlbase.cli.phases) and the build display fed a
stream recorded from a real buildx 0.13 writing a zstd image into Docker 26's containerd
store (tests/unit/data/buildkit-streams/zstd-export.rawjson, made by
tests/support/record_buildkit_streams.py). The replay's clock is the stream's own
timestamps, so the ticks land where a terminal would have shown them."""

from __future__ import annotations

import json
from pathlib import Path

from dlbase.cli import progress as progress_mod
from dlbase.cli.phases import PhaseTicker, human_bytes, plain_phase
from dlbase.cli.progress import BuildProgress
from dlbase.engine.buildkitstream import BuildKitStreamParser, _instant

DATA = Path(__file__).parent / "data" / "buildkit-streams"


class Clock:
    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_phase_ticks_after_ten_silent_seconds_with_bytes() -> None:
    clock, lines = Clock(), []
    ticker = PhaseTicker(lines.append, clock=clock)
    assert ticker.due() is None  # nothing open
    ticker.start("pushing 127.0.0.1:5000/x:1")
    clock.t = 9.5
    assert ticker.due() is None
    clock.t = 10.0
    ticker.progress(1_200_000_000, 5_900_000_000)
    assert ticker.due() == "pushing 127.0.0.1:5000/x:1 ... 10s (1.2 GB of 5.9 GB)"
    clock.t = 15.0
    assert ticker.due() is None  # the next tick is ten seconds after the last line
    ticker.printed()  # another line was printed at 15 s
    clock.t = 24.0
    assert ticker.due() is None
    clock.t = 25.0
    assert ticker.due() == "pushing 127.0.0.1:5000/x:1 ... 25s (1.2 GB of 5.9 GB)"
    assert ticker.end("something else") is None and ticker.phase is not None
    assert ticker.end() == 25.0 and ticker.due() is None


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 999, 1500, 2_500_000, 6_000_000_000)] == \
        ["0 B", "999 B", "1.5 kB", "2.5 MB", "6.0 GB"]


def test_plain_progress_phases_of_bake() -> None:
    assert plain_phase("#12 exporting layers") == ("exporting layers", False)
    assert plain_phase("#12 exporting layers 245.1s done") == ("exporting layers", True)
    assert plain_phase("#6 unpacking to docker.io/x/y:1 1.4s done") == ("unpacking to docker.io/x/y:1", True)
    assert plain_phase("#6 naming to docker.io/x/y:1 done") == ("naming to docker.io/x/y:1", True)
    assert plain_phase("#5 [2/2] RUN echo exporting layers") is None
    assert plain_phase("#6 DONE 5.4s") is None


def _stamps(obj: dict) -> list[float]:
    found = []
    for key in ("vertexes", "statuses"):
        for item in obj.get(key) or []:
            for field in ("started", "completed", "timestamp"):
                if item.get(field):
                    found.append(_instant(item[field]))
    return found


def test_the_recorded_zstd_export_ticks_and_says_what_each_phase_took(monkeypatch) -> None:
    """After the last step the exporter compresses 280 MB for ~7 s with rawjson silent (a
    full image: minutes): the display must say so while it happens (ticking every 2 s here,
    10 s in use), and how long it took when it ends."""
    text = (DATA / "zstd-export.rawjson").read_text(encoding="utf-8")
    objects, pending = [], []
    for line in text.splitlines():
        pending.append(line)
        if line == "}":
            objects.append(json.loads("\n".join(pending)))
            pending = []
    first = min(s for o in objects for s in _stamps(o))
    clock = Clock(0.0)
    shown: list[tuple[float, str]] = []
    display = BuildProgress(clock=clock, ticking=False, tick_every=2.0)
    monkeypatch.setattr(progress_mod.ui.err, "print", lambda text, **_k: shown.append((clock.t, str(text))))
    parser = BuildKitStreamParser(clock=clock)
    for obj in objects:
        now = max(_stamps(obj), default=first) - first
        while clock.t + 0.5 <= now:  # the ticker thread wakes between objects
            clock.t += 0.5
            tick = display.ticker.due()
            if tick:
                display.tick_line(tick)
        clock.t = max(clock.t, now)
        for event in parser.feed(obj):
            display.build(event)
    export = [(t, s) for t, s in shown if "exporting layers" in s]
    ticks = [(t, s) for t, s in export if "..." in s]
    assert ticks, shown  # at least one tick while the layers were compressed
    assert [s.split("exporting layers ... ")[1].split("s")[0] for _t, s in ticks] == ["2", "4", "6"], ticks
    done = [s for _t, s in export if "done (" in s]
    assert len(done) == 1 and float(done[0].split("done (")[1].split("s)")[0]) >= 6, done
    # no silence longer than the tick interval once the exporter started
    started = next(t for t, s in shown if "exporting to image" in s)
    times = [t for t, _s in shown if t >= started]
    assert max(b - a for a, b in zip(times, times[1:])) <= 2.0 + 0.5, shown


def test_a_push_ticks_with_the_bytes_of_all_its_layers(monkeypatch) -> None:
    from dlbase.cli.progress import TransferProgress
    from dlbase.engine import TransferEvent

    clock, shown = Clock(), []
    display = TransferProgress(False, clock=clock, ticking=False)
    monkeypatch.setattr(progress_mod.ui.err, "print", lambda text, **_k: shown.append(str(text)))
    display.say("pushing 127.0.0.1:5000/r:t (zstd layers as built, nothing re-compressed)")
    display.event(TransferEvent("progress", text="Pushing", layer="aaa", current=1_000_000_000,
                                total_bytes=3_000_000_000))
    display.event(TransferEvent("progress", text="Pushing", layer="bbb", current=500_000_000,
                                total_bytes=1_000_000_000))
    assert shown[-1].endswith("bbb: Pushing 500,000,000/1,000,000,000 bytes")  # a layer's own line, as before
    clock.t = 3.0
    display.event(TransferEvent("progress", text="Pushing", layer="bbb", current=600_000_000,
                                total_bytes=1_000_000_000))
    assert "600,000,000" not in shown[-1]  # at most every 5 s per layer
    display.event(TransferEvent("progress", text="Pushing", layer="bbb", current=500_000_000,
                                total_bytes=1_000_000_000))
    clock.t = 13.0
    tick = display.ticker.due()
    assert tick == ("pushing 127.0.0.1:5000/r:t (zstd layers as built, nothing re-compressed) ... 13s "
                    "(1.5 GB of 4.0 GB)")
    display.event(TransferEvent("layer", text="Pushed", layer="bbb"))  # a printed line: silence restarts
    clock.t = 18.0
    assert display.ticker.due() is None
    display.say("pulling it back")  # a new phase: its own seconds, no bytes yet
    clock.t = 29.0
    assert display.ticker.due() == "pulling it back ... 11s"
    display.event(TransferEvent("done", text="sha256:x"))
    clock.t = 60.0
    assert display.ticker.due() is None
