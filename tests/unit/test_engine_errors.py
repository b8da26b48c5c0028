"""Engine error paths without a daemon.

The connection tests use real docker-py clients pointed at endpoints where nothing
listens, so they exercise the real exception shapes. Fake API objects are used only
for paths a live daemon cannot be made to take on demand (dying mid-build).
"""

from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from dlbase.core import errors
from dlbase.engine import BUILD_ID_LABEL, BuildEvent, Engine
from dlbase.cli.progress import BuildProgress
from docker import errors as docker_errors

from tests.support.fake_docker import FakeAPI, StoppingAPI, broken_stream, fake_engine, stream


@pytest.fixture
def dead_socket(tmp_path: Path) -> str:
    return f"unix://{tmp_path}/no-daemon.sock"


@pytest.fixture
def dead_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def assert_unavailable(exc: errors.DaemonUnavailable, endpoint: str) -> None:
    assert exc.message == f"Docker daemon at {endpoint} is not reachable"
    assert "\n" not in exc.message
    assert "tools/host/setup.sh" in (exc.hint or "")
    assert exc.exit_code == errors.ExitCode.DAEMON


@pytest.mark.parametrize("endpoint_fixture", ["dead_socket", "dead_port"])
def test_ping_names_the_endpoint(endpoint_fixture: str, request: pytest.FixtureRequest) -> None:
    endpoint = request.getfixturevalue(endpoint_fixture)
    with pytest.raises(errors.DaemonUnavailable) as info:
        Engine(base_url=endpoint).ping()
    assert_unavailable(info.value, endpoint)


def test_docker_host_is_honoured(monkeypatch: pytest.MonkeyPatch, dead_socket: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", dead_socket)
    engine = Engine()
    assert engine.endpoint == dead_socket
    with pytest.raises(errors.DaemonUnavailable) as info:
        engine.ping()
    assert_unavailable(info.value, dead_socket)


def test_constructing_an_engine_does_not_touch_the_daemon(dead_socket: str) -> None:
    Engine(base_url=dead_socket)  # no exception: the client is made on first use


@pytest.mark.parametrize("call", [
    lambda e, ctx: e.image_exists("dlbase/debian:12-minbase"),
    lambda e, ctx: e.inspect_image("x"),
    lambda e, ctx: e.image_labels("x"),
    lambda e, ctx: e.remove_image("x"),
    lambda e, ctx: e.tag("x", "repo", "t"),
    lambda e, ctx: e.untag("repo", "t"),
    lambda e, ctx: e.has_nvidia_runtime(),
    lambda e, ctx: e.run("x", ["true"]),
    lambda e, ctx: e.build(ctx),
    lambda e, ctx: e.import_rootfs(ctx / "Dockerfile", "repo", "t"),
    lambda e, ctx: e.cleanup("dlbase.test-session=nothing"),
], ids=["image_exists", "inspect_image", "image_labels", "remove_image", "tag", "untag",
        "has_nvidia_runtime", "run", "build", "import_rootfs", "cleanup"])
def test_every_call_reports_an_absent_daemon(call: Any, dead_socket: str, context: Path) -> None:
    with pytest.raises(errors.DaemonUnavailable) as info:
        call(Engine(base_url=dead_socket), context)
    assert_unavailable(info.value, dead_socket)


def test_started_reports_an_absent_daemon(dead_socket: str) -> None:
    with pytest.raises(errors.DaemonUnavailable):
        with Engine(base_url=dead_socket).started("x"):
            pass


def test_cleanup_refuses_labels_outside_dlbase(dead_socket: str) -> None:
    with pytest.raises(errors.InvalidInput):
        Engine(base_url=dead_socket).cleanup("com.example.owner=someone")


# ---------------------------------------------------------------- build error paths (fake API)


FAILING_BUILD = stream(
    "Step 1/4 : FROM dlbase/debian:12-minbase",
    " ---> aaaaaaaaaaaa",
    "Step 2/4 : RUN echo cached",
    " ---> Using cache",
    " ---> bbbbbbbbbbbb",
    "Step 3/4 : COPY file /file",
    " ---> cccccccccccc",
    "Step 4/4 : RUN echo boom >&2 && false",
    " ---> Running in dddddddddddd",
    "\x1b[91mboom\n\x1b[0m",
    "Removing intermediate container dddddddddddd",
) + [{"errorDetail": {"code": 1, "message": "The command '/bin/sh -c echo boom >&2 && false' "
                                            "returned a non-zero code: 1"},
      "error": "The command ... returned a non-zero code: 1"}]


def test_failed_step_is_named_with_log_tail_and_file(tmp_path: Path, context: Path) -> None:
    api = FakeAPI(FAILING_BUILD)
    events: list[BuildEvent] = []
    log_path = tmp_path / "logs" / "build.log"
    with pytest.raises(errors.BuildFailed) as info:
        fake_engine(api).build(context, on_event=events.append, log_path=log_path)
    failure = info.value
    assert failure.step == "Step 4/4 : RUN echo boom >&2 && false"
    assert "boom" in failure.log_tail  # colour codes stripped
    assert failure.log_tail[-1].startswith("ERROR: The command")
    assert failure.log_file == str(log_path)
    assert "returned a non-zero code: 1" in log_path.read_text()
    assert [e.step for e in events if e.kind == "step"] == [1, 2, 3, 4]
    assert {e.total for e in events if e.kind == "step"} == {4}


def test_failed_build_removes_only_what_it_created(context: Path) -> None:
    api = FakeAPI(FAILING_BUILD)
    with pytest.raises(errors.BuildFailed):
        fake_engine(api).build(context)
    # the FROM image and the cache hit existed before the build: never removed
    assert api.removed_images == ["cccccccccccc"]
    assert api.removed_containers == ["dddddddddddd"]


def test_failed_build_keeps_layers_when_asked(context: Path) -> None:
    api = FakeAPI(FAILING_BUILD)
    with pytest.raises(errors.BuildFailed):
        fake_engine(api).build(context, clean_on_failure=False)
    assert api.removed_images == [] and api.removed_containers == []


def test_build_labels_and_classic_builder_options(context: Path) -> None:
    api = FakeAPI(stream("Step 1/1 : FROM x", " ---> aaaaaaaaaaaa", "Successfully built aaaaaaaaaaaa")
                  + [{"aux": {"ID": "sha256:" + "a" * 64}}])
    image_id = fake_engine(api).build(context, labels={"dlbase.variant": "v"}, network_mode="host")
    assert image_id == "sha256:" + "a" * 64
    kwargs = api.build_kwargs
    assert kwargs["labels"]["dlbase.variant"] == "v"
    assert len(kwargs["labels"][BUILD_ID_LABEL]) == 36  # a uuid4
    assert kwargs["rm"] and kwargs["forcerm"] and kwargs["decode"]
    assert kwargs["network_mode"] == "host" and "tag" not in kwargs


def test_daemon_going_away_mid_build(context: Path) -> None:
    api = FakeAPI(broken_stream(requests.exceptions.ChunkedEncodingError("connection broken")),
                  alive=False)
    with pytest.raises(errors.DaemonUnavailable) as info:
        fake_engine(api).build(context)
    assert info.value.message == "Docker daemon at unix:///fake.sock went away during the build"
    assert "tools/host/setup.sh" in (info.value.hint or "")


def test_broken_stream_with_daemon_alive_is_a_build_failure(context: Path) -> None:
    api = FakeAPI(broken_stream(requests.exceptions.ChunkedEncodingError("connection broken")))
    with pytest.raises(errors.BuildFailed) as info:
        fake_engine(api).build(context)
    assert info.value.step == "Step 2/2 : RUN sleep 100"
    assert api.removed_containers == ["eeeeeeeeeeee"]


def test_ctrl_c_becomes_interrupted_after_cleanup(context: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dlbase.engine.daemon.time.sleep", lambda _s: None)
    api = FakeAPI(broken_stream(KeyboardInterrupt()))
    with pytest.raises(errors.Interrupted) as info:
        fake_engine(api).build(context)
    assert info.value.exit_code == 130
    assert api.removed_containers == ["eeeeeeeeeeee"]


def test_missing_context_is_reported(tmp_path: Path) -> None:
    with pytest.raises(errors.Missing):
        fake_engine(FakeAPI([])).build(tmp_path / "nope")


class NotFoundAPI(FakeAPI):
    def inspect_image(self, ref: str) -> dict:
        raise docker_errors.ImageNotFound(f"No such image: {ref}")

    def remove_image(self, ref: str, **_kwargs: Any) -> None:
        response = requests.Response()
        response.status_code = 409
        raise docker_errors.APIError("conflict", response=response,
                                     explanation="image is being used by running container")


def test_api_errors_become_typed_errors() -> None:
    engine = fake_engine(NotFoundAPI([]))
    assert engine.image_exists("nope:1") is False
    with pytest.raises(errors.Missing) as missing:
        engine.inspect_image("nope:1")
    assert "nope:1" in missing.value.message
    with pytest.raises(errors.DlbaseError) as refused:
        engine.remove_image("busy:1")
    assert "image is being used by running container" in refused.value.message
    assert not isinstance(refused.value, errors.DaemonUnavailable)


# ---------------------------------------------------------------- the daemon going away, the cache


@pytest.mark.parametrize("exc", [
    urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(0 bytes read, 2 more expected)",
                                     http.client.IncompleteRead(b"", 2)),
    http.client.IncompleteRead(b"", 2),
], ids=["urllib3-ProtocolError", "http.client-IncompleteRead"])
def test_a_stream_broken_by_a_dead_daemon_is_daemon_unavailable(tmp_path: Path, exc: Exception) -> None:
    """docker-py reads the build stream from the raw urllib3 response, so a daemon dying
    mid-build raises urllib3/http.client errors that requests never wraps."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    api = FakeAPI(broken_stream(exc), alive=False)
    with pytest.raises(errors.DaemonUnavailable) as info:
        fake_engine(api).build(tmp_path, log_path=tmp_path / "build.log")
    assert info.value.message == "Docker daemon at unix:///fake.sock went away during the build"
    assert "failing step: Step 2/2 : RUN sleep 100" in info.value.details
    assert f"full log: {tmp_path / 'build.log'}" in info.value.details
    assert info.value.exit_code == errors.ExitCode.DAEMON


def test_a_daemon_still_answering_while_it_stops_is_still_gone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("dlbase.engine.daemon.time.sleep", lambda _s: None)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    api = StoppingAPI(broken_stream(urllib3.exceptions.ProtocolError("Connection broken")), answers=2)
    with pytest.raises(errors.DaemonUnavailable):
        fake_engine(api).build(tmp_path)


def test_a_step_killed_by_a_stopping_daemon_is_daemon_unavailable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("dlbase.engine.daemon.time.sleep", lambda _s: None)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    killed = stream("Step 1/2 : FROM x", " ---> aaaaaaaaaaaa", "Step 2/2 : RUN sleep 100",
                    " ---> Running in eeeeeeeeeeee") + [
        {"errorDetail": {"message": "The command '/bin/sh -c sleep 100' returned a non-zero code: 137"}}]
    with pytest.raises(errors.DaemonUnavailable) as info:
        fake_engine(StoppingAPI(killed, answers=1)).build(tmp_path)
    assert "failing step: Step 2/2 : RUN sleep 100" in info.value.details


def test_an_ordinary_failing_step_is_reported_without_waiting(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    failing = stream("Step 1/2 : FROM x", " ---> aaaaaaaaaaaa", "Step 2/2 : RUN false",
                     " ---> Running in eeeeeeeeeeee") + [
        {"errorDetail": {"message": "The command '/bin/sh -c false' returned a non-zero code: 1"}}]
    started = time.monotonic()
    with pytest.raises(errors.BuildFailed):
        fake_engine(FakeAPI(failing)).build(tmp_path)
    assert time.monotonic() - started < 1


def test_cache_hits_are_events_and_show_as_cached(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    api = FakeAPI(stream("Step 1/3 : FROM x", " ---> aaaaaaaaaaaa", "Step 2/3 : RUN pip install big",
                         " ---> Using cache", " ---> bbbbbbbbbbbb", "Step 3/3 : COPY tests /tests",
                         " ---> cccccccccccc", "Successfully built cccccccccccc")
                  + [{"aux": {"ID": "sha256:" + "c" * 64}}])
    events: list[BuildEvent] = []
    fake_engine(api).build(tmp_path, on_event=events.append)
    assert [(e.kind, e.step) for e in events if e.kind in ("step", "cached")] == [
        ("step", 1), ("step", 2), ("cached", 2), ("step", 3)]
    shown: list[str] = []
    progress = BuildProgress()
    progress._line = shown.append  # type: ignore[method-assign]
    progress._wheels_summarised = True
    for event in events:
        progress.build(event)
    steps = [line for line in shown if line.startswith("[bold]step")]
    assert steps == ["[bold]step 1/3[/bold] FROM x", "[bold]step 2/3[/bold] [green](cached)[/green] RUN pip install big",
                     "[bold]step 3/3[/bold] COPY tests /tests"]
    assert shown[-1].endswith("(1 of 3 steps from the layer cache)")
