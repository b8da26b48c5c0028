"""The pure classic-builder stream parser, fed streams recorded from a real daemon
(tests/unit/data/build-streams/, made by tests/support/record_build_streams.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from dlbase.core import errors
from dlbase.engine.buildstream import BuildEvent, BuildStreamParser, failure_kind, hash_mismatch, killed_by_signal

DATA = Path(__file__).parent / "data" / "build-streams"


def recorded(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text().splitlines()]


def replay(name: str, parser: BuildStreamParser) -> tuple[list[BuildEvent], dict | None]:
    """Feed every chunk; returns the events and the recorded break (if the stream broke)."""
    events: list[BuildEvent] = []
    for chunk in recorded(name):
        if "_raised" in chunk:
            return events, chunk
        events.extend(parser.feed(chunk))
    return events, None


def test_the_parser_imports_no_docker() -> None:
    source = (Path(__file__).parents[2] / "tools/dlbase/engine/buildstream.py").read_text()
    assert "import docker" not in source and "from docker" not in source


def test_success_steps_objects_and_image_id() -> None:
    log = io.StringIO()
    parser = BuildStreamParser(log=log, clock=lambda: 0.0)
    events, broke = replay("success", parser)
    assert broke is None
    steps = [(e.step, e.total, e.text) for e in events if e.kind == "step"]
    assert steps == [(1, 4, "FROM dlbase/debian:12-minbase"),
                     (2, 4, "RUN echo recording a build && echo to stderr >&2"),
                     (3, 4, "COPY file.txt /file.txt"), (4, 4, "LABEL dlbase.test=record-streams")]
    trace = parser.trace
    assert trace.chain[0] == "847acd4ba6ef"  # FROM's image is in the chain...
    assert "847acd4ba6ef" not in trace.created_images  # ...but was not made by this build
    assert trace.created_images == trace.chain[1:]
    assert len(trace.containers) == 2  # RUN and LABEL ran in intermediate containers
    assert parser.finish().removeprefix("sha256:").startswith(trace.created_images[-1])
    assert "to stderr" in log.getvalue() and "\x1b[" not in log.getvalue()  # colour codes stripped
    outputs = [e for e in events if e.kind == "output" and e.text == "recording a build"]
    assert outputs and outputs[0].step == 2


def test_failed_step_names_the_step_with_the_tail() -> None:
    parser = BuildStreamParser(log_file="/tmp/build.log")
    with pytest.raises(errors.BuildFailed) as info:
        replay("failed-step", parser)
    failure = info.value
    assert failure.step == "Step 3/4 : RUN echo boom >&2 && false"
    assert "boom" in failure.log_tail
    assert failure.log_tail[-1] == ("ERROR: The command '/bin/sh -c echo boom >&2 && false' "
                                    "returned a non-zero code: 1")
    assert failure.log_file == "/tmp/build.log" and "full log: /tmp/build.log" in failure.details
    assert failure.hint and failure_kind(failure) == "step"
    # what a clean-up may remove: the COPY layer and the RUN container, never FROM's image
    assert parser.trace.created_images == [parser.trace.chain[1]]
    assert len(parser.trace.containers) == 1 and parser.trace.image_id is None


def test_hash_mismatch_is_recognised_from_pips_words() -> None:
    parser = BuildStreamParser()
    with pytest.raises(errors.BuildFailed) as info:
        replay("hash-mismatch", parser)
    assert failure_kind(info.value) == "hash-mismatch"
    assert hash_mismatch(info.value.log_tail)
    assert "--require-hashes" in (info.value.step or "")  # the step that installs the lock


def test_daemon_gone_leaves_a_started_trace_without_an_image() -> None:
    parser = BuildStreamParser()
    events, broke = replay("daemon-gone", parser)
    assert broke is not None and broke["_raised"] == "urllib3.exceptions.ProtocolError"
    assert "IncompleteRead" in broke["_message"]
    assert parser.trace.started and parser.trace.step_text == "Step 3/4 : RUN echo sleeping && sleep 60"
    assert parser.trace.step_number == 3
    assert [e.text for e in events if e.kind == "output"][-1] == "sleeping"
    with pytest.raises(errors.BuildFailed) as info:
        parser.finish()  # a stream that just stopped named no image
    assert info.value.message == "build stream ended without an image ID"
    assert info.value.step == "Step 3/4 : RUN echo sleeping && sleep 60"


@pytest.mark.parametrize("message,killed", [
    ("The command '/bin/sh -c sleep 100' returned a non-zero code: 137", True),
    ("The command '/bin/sh -c false' returned a non-zero code: 1", False),
    ("COPY failed: file not found in build context", False),
])
def test_a_step_killed_by_a_signal_is_told_apart(message: str, killed: bool) -> None:
    assert killed_by_signal(message) is killed
    assert failure_kind(errors.BuildFailed(message)) == ("killed" if killed else "step")


def test_cache_hits_are_not_the_builds_own_images() -> None:
    chunks = [{"stream": "Step 1/2 : FROM x\n"}, {"stream": " ---> aaaaaaaaaaaa\n"},
              {"stream": "Step 2/2 : RUN pip install big\n"}, {"stream": " ---> Using cache\n"},
              {"stream": " ---> bbbbbbbbbbbb\n"}, {"stream": "Successfully built bbbbbbbbbbbb\n"}]
    parser = BuildStreamParser()
    kinds = [e.kind for chunk in chunks for e in parser.feed(chunk)]
    assert kinds == ["step", "output", "step", "cached", "output", "output"]
    assert parser.trace.created_images == [] and parser.finish() == "bbbbbbbbbbbb"


def test_pull_progress_and_status_lines() -> None:
    parser = BuildStreamParser()
    progress = parser.feed({"status": "Downloading", "id": "abc", "progressDetail": {"current": 5, "total": 10}})
    status = parser.feed({"status": "Pull complete", "id": "abc"})
    assert progress == [BuildEvent("progress", text="Downloading", layer="abc", current=5, total_bytes=10,
                                   elapsed=progress[0].elapsed)]
    assert status[0].kind == "status" and status[0].text == "abc: Pull complete"
    assert list(parser.trace.tail) == ["abc: Pull complete"]


def test_images_of_earlier_stages_are_told_apart_from_the_images_stage() -> None:
    """The classic builder commits stage "sources" as images of their own that the image
    never holds: the trace names them (cache hits and FROM's image excluded) for removal."""
    parser = BuildStreamParser()
    for line in ("Step 1/6 : FROM dlbase/debian:12 AS sources", " ---> 0ba5e0000000",
                 "Step 2/6 : COPY runtime/ /sources/runtime/", " ---> Using cache", " ---> 1cac0ed00000",
                 "Step 3/6 : RUN find /sources -exec touch {} +", " ---> Running in c0ffee000000",
                 " ---> 2500ce500000",
                 "Step 4/6 : FROM dlbase/debian:12", " ---> 0ba5e0000000",
                 "Step 5/6 : COPY --from=sources /sources/runtime/ /opt/dlbase/", " ---> 3111a9e00000",
                 "Step 6/6 : LABEL a=b", " ---> 4111a9e00000", "Successfully built 4111a9e00000"):
        parser.feed({"stream": line + "\n"})
    assert parser.trace.created_images == ["2500ce500000", "3111a9e00000", "4111a9e00000"]
    assert parser.trace.earlier_stage_images == ["2500ce500000"]
    single = BuildStreamParser()
    for line in ("Step 1/2 : FROM dlbase/debian:12", " ---> 0ba5e0000000", "Step 2/2 : LABEL a=b",
                 " ---> 4111a9e00000"):
        single.feed({"stream": line + "\n"})
    assert single.trace.earlier_stage_images == []
