"""The pure BuildKit (buildx rawjson) stream parser, fed streams recorded from a real buildx
0.13 on Docker 26 (tests/unit/data/buildkit-streams/, made by
tests/support/record_buildkit_streams.py), and mapped to the classic builder's event kinds."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from dlbase.core import errors
from dlbase.engine.buildkitstream import BuildKitStreamParser, seconds_between
from dlbase.engine.buildstream import BuildEvent, failure_kind, hash_mismatch, killed_by_signal, step_exit_code
from dlbase.cli.progress import BuildProgress

DATA = Path(__file__).parent / "data" / "buildkit-streams"


def replay(name: str, parser: BuildKitStreamParser) -> list[BuildEvent]:
    events: list[BuildEvent] = []
    with open(DATA / f"{name}.rawjson", encoding="utf-8") as fh:
        for line in fh:
            events.extend(parser.feed_line(line))
    return events + parser.close()


def meta(name: str) -> dict:
    return json.loads((DATA / f"{name}.meta.json").read_text())


def steps(events: list[BuildEvent], kind: str = "step") -> list[tuple[int | None, int | None, str]]:
    return [(e.step, e.total, e.text) for e in events if e.kind == kind]


def test_the_parser_imports_no_docker_and_runs_nothing() -> None:
    source = (Path(__file__).parents[2] / "tools/dlbase/engine/buildkitstream.py").read_text()
    for forbidden in ("import docker", "from docker", "import subprocess"):
        assert forbidden not in source


def test_the_recorded_stream_is_indented_json_then_text() -> None:
    """What the parser is built for: buildx writes each object over many lines."""
    text = (DATA / "failed-step.rawjson").read_text()
    assert text.startswith("{\n  \"vertexes\"")
    assert text.rstrip().splitlines()[-1].startswith("ERROR: failed to solve: ")


def test_success_steps_outputs_and_the_exported_digest() -> None:
    log = io.StringIO()
    parser = BuildKitStreamParser(log=log, clock=lambda: 0.0)
    events = replay("success", parser)
    assert [s for s, _t, _x in steps(events)] == [1, 2, 3, 4]
    # BuildKit shares a vertex between concurrent builds on one daemon, named by the build that
    # made it first: this recording's FROM came named "[ 1/19] FROM ..." by another build
    # running then. The steps of this build's own carry its total.
    assert [t for _s, t, _x in steps(events)][1:] == [4, 4, 4]
    assert steps(events)[1][2] == 'RUN echo "hello recorded" && echo to-stderr >&2'
    assert steps(events)[2][2] == "COPY file.txt /file.txt"
    assert steps(events, "cached") == []  # --no-cache: nothing from the cache
    outputs = [(e.step, e.text) for e in events if e.kind == "output"]
    assert (2, "hello recorded") in outputs and (2, "to-stderr") in outputs  # stdout and stderr
    assert any(step == 4 and text.startswith("recorded ") for step, text in outputs)
    assert parser.trace.failed is None
    # the exporter names the manifest it wrote: the digest --metadata-file reports too
    assert parser.trace.manifest == meta("success")["metadata"]["containerimage.digest"]
    written = log.getvalue()
    assert "[2/4] RUN echo" in written and "hello recorded\n" in written and "exporting layers done (" in written
    assert '"vertexes"' not in written  # the log is text, not the raw stream


def test_cache_hits_come_as_step_then_cached_like_the_classic_builder() -> None:
    parser = BuildKitStreamParser(clock=lambda: 0.0)
    events = replay("cached", parser)
    kinds = [(e.kind, e.step) for e in events if e.kind in ("step", "cached")]
    assert kinds == [("step", 1), ("step", 2), ("cached", 2), ("step", 3), ("cached", 3), ("step", 4), ("cached", 4)]
    assert not [e for e in events if e.kind == "output" and e.text.startswith("hello")]  # nothing re-ran
    assert parser.trace.manifest == meta("success")["metadata"]["containerimage.digest"]  # same digest twice


def test_the_progress_display_counts_buildkit_cache_hits(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's display, unchanged, reads BuildKit's events the way it reads the classic ones."""
    progress = BuildProgress()
    for event in replay("template-warm", BuildKitStreamParser(clock=lambda: 0.0)):
        progress.build(event)
    progress.build(BuildEvent("done", image_id="sha256:" + "0" * 64))
    err = capsys.readouterr().err
    assert "step 14/15 (cached) COPY runtime/preflight.py" in err
    assert "step 15/15 COPY tests/image/" in err and "step 15/15 (cached)" not in err
    assert "(13 of 15 steps from the layer cache)" in err  # FROM is no cache hit, the edited step ran


def test_padded_step_numbers_of_a_long_dockerfile() -> None:
    """buildx pads the step number to the total's width: "[ 2/15] RUN ..."."""
    events = replay("template-warm", BuildKitStreamParser(clock=lambda: 0.0))
    numbers = [s for s, _t, _x in steps(events)]
    assert numbers == list(range(1, 16))
    assert steps(events)[1][2].startswith("RUN apt-get update")


def test_a_failing_run_names_its_step_with_its_own_tail() -> None:
    parser = BuildKitStreamParser(log_file="/tmp/build.log", clock=lambda: 0.0)
    events = replay("failed-step", parser)
    assert meta("failed-step")["returncode"] == 1
    failure = parser.result_failure(1)
    assert isinstance(failure, errors.BuildFailed)
    assert failure.step == '[3/4] RUN echo "about to fail" >&2 && exit 3'
    assert failure.message.endswith("did not complete successfully: exit code: 3")
    assert failure.log_tail[0] == "about to fail"  # the failing step's output, not the passing step's
    assert "step-two-ok" not in failure.log_tail
    assert failure.log_file == "/tmp/build.log" and "full log: /tmp/build.log" in failure.details
    assert failure.hint and failure_kind(failure) == "step" and step_exit_code(failure.message) == 3
    # buildx's closing text report is kept as output lines (and in the log)
    assert any(e.text.startswith("ERROR: failed to solve: ") for e in events if e.kind == "output")
    assert ("RUN echo never", 4) not in [(x, s) for s, _t, x in steps(events)]  # never started


def test_an_interrupted_build_is_a_cancel_not_a_failing_step() -> None:
    parser = BuildKitStreamParser(clock=lambda: 0.0)
    replay("interrupted", parser)
    assert parser.trace.failed is None  # "context canceled" is no step's fault
    assert parser.trace.step_text == "[2/2] RUN echo going-to-sleep && sleep 60"
    assert "Canceled" in parser.result_failure(1).message


def test_log_chunks_are_joined_into_lines() -> None:
    """BuildKit cuts logs where the pipe did, not at newlines: a line may span chunks."""
    import base64

    parser = BuildKitStreamParser(clock=lambda: 0.0)
    vertex = {"digest": "sha256:v", "name": "[2/2] RUN pip install x", "started": "2026-12-02T04:32:18Z"}

    def logs(data: bytes) -> dict:
        return {"logs": [{"vertex": "sha256:v", "stream": 1, "data": base64.b64encode(data).decode()}]}

    assert [e.kind for e in parser.feed({"vertexes": [vertex]})] == ["step"]
    assert parser.feed(logs(b"Downloading wh")) == []
    first = parser.feed(logs(b"eel\nHash mismatch for x\n10%\r50%\r100%\n"))
    assert [e.text for e in first] == ["Downloading wheel", "Hash mismatch for x", "100%"]
    assert hash_mismatch(list(parser.trace.tail))


def test_download_progress_and_finished_statuses() -> None:
    parser = BuildKitStreamParser(clock=lambda: 0.0)
    ticking = parser.feed({"statuses": [{"id": "sha256:abc", "vertex": "sha256:v", "current": 5, "total": 10,
                                         "started": "2026-12-02T04:32:18.5Z"}]})
    done = parser.feed({"statuses": [{"id": "sha256:abc", "vertex": "sha256:v", "current": 10, "total": 10,
                                      "started": "2026-12-02T04:32:18.5Z", "completed": "2026-12-02T04:32:20Z"}]})
    again = parser.feed({"statuses": [{"id": "sha256:abc", "vertex": "sha256:v", "current": 10, "total": 10,
                                       "started": "2026-12-02T04:32:18.5Z", "completed": "2026-12-02T04:32:20Z"}]})
    assert ticking == [BuildEvent("progress", text="sha256:abc", layer="sha256:abc", current=5, total_bytes=10)]
    assert [(e.kind, e.text) for e in done] == [("status", "sha256:abc done (1.5s)")]
    assert again == []  # one line per finished status


def test_text_that_only_looks_like_json_is_kept() -> None:
    parser = BuildKitStreamParser(clock=lambda: 0.0)
    assert parser.feed_line("{not json\n") == []
    events = parser.feed_line("}\n")
    assert [e.text for e in events] == ["{not json", "}"]


@pytest.mark.parametrize("message,code", [
    ('process "/bin/sh -c sleep 9" did not complete successfully: exit code: 137', 137),
    ("The command '/bin/sh -c false' returned a non-zero code: 1", 1),
])
def test_exit_codes_of_both_builders(message: str, code: int) -> None:
    assert step_exit_code(message) == code
    assert killed_by_signal(message) is (code >= 128)


def test_seconds_between_buildkit_timestamps() -> None:
    assert seconds_between("2026-12-02T04:32:18.97756791Z", "2026-12-02T04:32:32.068854511Z") == 13.091
    assert seconds_between("nonsense", "2026-12-02T04:32:32Z") is None


def test_a_failed_load_names_the_load_not_the_last_step_and_a_full_disk_says_what_to_free() -> None:
    """Seen in CI: every step passed, then docker load hit ENOSPC, and the error named the
    last build step as the one that failed."""
    parser = BuildKitStreamParser(clock=lambda: 0.0)
    replay("success", parser)
    assert parser.trace.step_text  # the latest step a naive failure would have named
    failure = parser.failure("docker load of the built image failed: write .../ingest/x/data: "
                             "no space left on device: unknown", step="loading the built image")
    assert failure.step == "loading the built image"
    assert failure.hint and "docker builder prune" in failure.hint and "DLBASE_BUILDKIT_KEEP_STORAGE" in failure.hint
    plain = parser.failure("docker load of the built image failed: unexpected EOF", step="loading the built image")
    assert plain.hint is None or "prune" not in plain.hint


def test_the_running_step_is_the_one_not_completed_when_stages_run_side_by_side() -> None:
    """Stage "sources" runs beside the image's stage: a short step of it can start (and end)
    while a long step of the other is still at work; an interrupt names the one at work."""
    parser = BuildKitStreamParser(clock=lambda: 0.0)
    long = {"digest": "sha256:a", "name": "[stage-1 3/9] RUN sleep 600", "started": "2026-12-03T12:00:00Z"}
    short = {"digest": "sha256:b", "name": "[sources 7/7] RUN find /sources", "started": "2026-12-03T12:00:01Z"}
    parser.feed({"vertexes": [long]})
    parser.feed({"vertexes": [short]})
    assert parser.trace.step_text == short["name"]  # the latest that started
    assert parser.trace.running_text == short["name"]  # both still at work: the latest
    parser.feed({"vertexes": [{**short, "completed": "2026-12-03T12:00:02Z"}]})
    assert parser.trace.running_text == long["name"]
    parser.feed({"vertexes": [{**long, "completed": "2026-12-03T12:10:00Z"}]})
    assert parser.trace.running_text == short["name"]  # none at work: the latest started
