"""Engine against the real daemon: builds, failed builds, runs, imports, clean-up.

Everything created here carries the session label (see conftest.py); leftover checks
look only at objects this test itself created (read off its own build events), because
other people use the same daemon at the same time.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from dlbase.core import errors
from dlbase.engine import BUILD_ID_LABEL, MANAGED_LABEL, BuildEvent, Engine

pytestmark = pytest.mark.docker

LAYER_RE = re.compile(r"^ ---> ([0-9a-f]{12})$")
RUNNING_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12})$")


def case_label() -> dict[str, str]:
    """A label unique to one test, to find (only) its own objects."""
    return {"dlbase.test-case": str(uuid.uuid4())}


def container_exists(engine: Engine, container_id: str) -> bool:
    return any(c["Id"].startswith(container_id)
               for c in engine._api.containers(all=True, filters={"id": container_id}))


def assert_nothing_left(engine: Engine, events: list[BuildEvent], base_id: str) -> None:
    """No container and no image that this build's stream announced may still exist."""
    lines = [e.text for e in events if e.kind == "output"]
    containers = [m.group(1) for line in lines if (m := RUNNING_RE.match(line))]
    images = [m.group(1) for line in lines if (m := LAYER_RE.match(line))]
    assert containers, "the build should have run at least one step container"
    for container_id in containers:
        assert not container_exists(engine, container_id), f"container {container_id} left behind"
    created = [i for i in images if not base_id.removeprefix("sha256:").startswith(i)]
    for image_id in created:
        assert not engine.image_exists(image_id), f"image {image_id} left behind"
    dangling = {d.removeprefix("sha256:")[:12] for d in engine.dangling_images()}
    assert not dangling & set(created)


# ---------------------------------------------------------------- build


def test_build_streams_steps_labels_and_log(engine: Engine, context_dir, session_labels, tmp_path: Path) -> None:
    ctx = context_dir("ENV GREETING=hello", "COPY note.txt /note.txt",
                      "RUN cat /note.txt && echo built-by-test", files={"note.txt": "a note\n"})
    events: list[BuildEvent] = []
    log_path = tmp_path / "build.log"
    image_id = engine.build(ctx, labels={**session_labels, "dlbase.variant": "test"},
                            on_event=events.append, log_path=log_path, nocache=True)

    assert image_id.startswith("sha256:") and len(image_id) == 71
    info = engine.inspect_image(image_id)
    assert info["RepoTags"] == []  # build() applies no tag
    labels = engine.image_labels(image_id)
    assert labels["dlbase.variant"] == "test"
    assert len(labels[BUILD_ID_LABEL]) == 36
    assert labels["dlbase.base"] == "debian12-minbase"  # inherited from the base
    steps = [e for e in events if e.kind == "step"]
    assert [s.text.split()[0] for s in steps][:4] == ["FROM", "ENV", "COPY", "RUN"]
    assert all(s.total == steps[0].total for s in steps)
    assert events[-1].kind == "done" and events[-1].image_id == image_id
    assert all(b.elapsed >= a.elapsed for a, b in zip(events, events[1:], strict=False))
    log = log_path.read_text()
    assert "built-by-test" in log and "Step 4/" in log


def test_tag_and_untag(engine: Engine, context_dir, session_labels) -> None:
    image_id = engine.build(context_dir("RUN true"), labels=session_labels)
    repository, tag = "dlbase-test/tagging", uuid.uuid4().hex[:8]
    assert engine.tag(image_id, repository, tag) == f"{repository}:{tag}"
    assert engine.tag(image_id, repository, tag + "-moving") == f"{repository}:{tag}-moving"
    assert engine.inspect_image(f"{repository}:{tag}")["Id"] == image_id
    engine.untag(repository, tag)
    assert not engine.image_exists(f"{repository}:{tag}")
    assert engine.image_exists(image_id)  # another tag still holds it
    engine.untag(repository, tag + "-moving")
    assert not engine.image_exists(image_id)  # the daemon drops an image with no tag left


def test_failing_run_step_is_reported_and_cleaned_up(engine: Engine, context_dir, session_labels,
                                                     debian_base, tmp_path: Path) -> None:
    ctx = context_dir("ENV A=1", "RUN echo first > /first",
                      "RUN echo about-to-fail && echo the-reason >&2 && exit 3", "RUN echo never")
    events: list[BuildEvent] = []
    log_path = tmp_path / "failed.log"
    with pytest.raises(errors.BuildFailed) as info:
        engine.build(ctx, labels=session_labels, on_event=events.append, log_path=log_path, nocache=True)

    failure = info.value
    assert failure.step is not None and "RUN echo about-to-fail" in failure.step
    assert failure.step.startswith("Step 4/")
    assert "the-reason" in failure.log_tail and "about-to-fail" in failure.log_tail
    assert "returned a non-zero code: 3" in failure.message
    assert failure.log_file == str(log_path) and "the-reason" in log_path.read_text()
    assert any("failing step" in d for d in failure.details)
    assert "never" not in log_path.read_text().split("Step 4/")[1].split("ERROR")[0]
    assert_nothing_left(engine, events, debian_base.image_id)


def test_ctrl_c_during_a_step_cleans_up(engine: Engine, context_dir, session_labels, debian_base) -> None:
    ctx = context_dir("RUN echo before > /before", "RUN sleep 60")
    events: list[BuildEvent] = []

    def interrupt_in_sleep(event: BuildEvent) -> None:
        events.append(event)
        if event.kind == "output" and event.step == 3 and event.text.startswith(" ---> Running in"):
            time.sleep(0.5)
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(errors.Interrupted) as info:
        engine.build(ctx, labels=session_labels, on_event=interrupt_in_sleep, nocache=True)
    assert info.value.exit_code == 130
    assert time.monotonic() - started < 30  # did not wait for the sleep
    assert_nothing_left(engine, events, debian_base.image_id)
    engine.ping()  # the engine is still usable after dropping the stream


# ---------------------------------------------------------------- run


def test_run_returns_exit_code_and_output_and_removes_container(engine: Engine, debian_base) -> None:
    label = case_label()
    result = engine.run(debian_base.ref, ["bash", "-c", "echo out; echo err >&2; exit 4"],
                        environment={"X": "y"}, labels=label)
    assert result.exit_code == 4 and not result.ok and not result.timed_out
    assert "out" in result.output and "err" in result.output
    assert engine.containers_with_label(_as_filter(label)) == []

    ok = engine.run(debian_base.ref, ["sh", "-c", 'echo "$X $(id -u)"'], environment={"X": "y"},
                    user="nobody", labels=label, shm_size="64m")
    assert ok.ok and ok.output.strip() == "y 65534"


def test_run_timeout_kills_and_removes(engine: Engine, debian_base) -> None:
    label = case_label()
    started = time.monotonic()
    result = engine.run(debian_base.ref, ["sh", "-c", "echo started; sleep 60"], timeout=2, labels=label)
    assert result.timed_out and result.exit_code is None and not result.ok
    assert "started" in result.output
    assert time.monotonic() - started < 20
    assert engine.containers_with_label(_as_filter(label)) == []


def test_run_missing_image_is_missing(engine: Engine) -> None:
    with pytest.raises(errors.Missing):
        engine.run(f"dlbase-test/absent:{uuid.uuid4().hex[:8]}", ["true"])


def test_run_containers_are_managed(engine: Engine, debian_base) -> None:
    label = case_label()
    with engine.started(debian_base.ref, labels=label, ports={"8888/tcp": None}) as container:
        [summary] = engine.containers_with_label(_as_filter(label))
        [(host_ip, host_port)] = [b for b in container.ports["8888/tcp"] if "." in b[0]]
        assert host_port > 0
        assert summary["Labels"][MANAGED_LABEL] == "true"
        assert container.testinfra_host == f"docker://{container.name}"
        result = engine.exec(container.id, ["cat", "/etc/debian_version"])
        assert result.ok and result.output.startswith("12.")
    assert engine.containers_with_label(_as_filter(label)) == []


def test_started_container_is_removed_when_the_body_fails(engine: Engine, debian_base) -> None:
    label = case_label()
    with pytest.raises(RuntimeError):
        with engine.started(debian_base.ref, labels=label):
            raise RuntimeError("check failed")
    assert engine.containers_with_label(_as_filter(label)) == []


def test_started_reports_a_command_that_cannot_start(engine: Engine, debian_base) -> None:
    label = case_label()
    with pytest.raises(errors.DlbaseError) as info:
        with engine.started(debian_base.ref, ["/no/such-binary"], labels=label):
            pass
    assert "/no/such-binary" in info.value.message
    assert engine.containers_with_label(_as_filter(label)) == []


def test_gpu_request_without_nvidia_runtime(engine: Engine, debian_base) -> None:
    if engine.has_nvidia_runtime():
        pytest.skip("this daemon has an nvidia runtime")
    with pytest.raises(errors.Missing) as info:
        engine.run(debian_base.ref, ["true"], gpus=True, labels=case_label())
    assert "GPU" in info.value.message


# ---------------------------------------------------------------- import + cleanup


def tiny_rootfs() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"hello from a tiny rootfs\n"
        member = tarfile.TarInfo("hello.txt")
        member.size, member.mtime = len(data), 1700000000
        tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def test_import_rootfs_applies_changes_and_labels(engine: Engine, session_labels, tmp_path: Path) -> None:
    tar_path = tmp_path / "rootfs.tar"
    tar_path.write_bytes(tiny_rootfs())
    repository, tag = "dlbase-test/imported", uuid.uuid4().hex[:8]
    image_id = engine.import_rootfs(tar_path, repository, tag, changes=['CMD ["/hello"]', 'ENV A="b c"'],
                                    labels={**session_labels, "dlbase.note": "with spaces = and quotes\""})
    info = engine.inspect_image(f"{repository}:{tag}")
    assert info["Id"] == image_id
    assert info["Config"]["Cmd"] == ["/hello"]
    assert "A=b c" in info["Config"]["Env"]
    assert info["Config"]["Labels"]["dlbase.note"] == "with spaces = and quotes\""

    stream_id = engine.import_rootfs(io.BytesIO(tiny_rootfs()), repository, tag + "-s", labels=session_labels)
    # same files, same layer; the image ID differs only through the import time
    assert engine.inspect_image(stream_id)["RootFS"]["Layers"] == info["RootFS"]["Layers"]


def test_cleanup_removes_only_labelled_objects(engine: Engine, debian_base, session_labels, tmp_path: Path) -> None:
    label = case_label()
    labels = {**session_labels, **label}
    image_id = engine.import_rootfs(io.BytesIO(tiny_rootfs()), "dlbase-test/cleanup", uuid.uuid4().hex[:8],
                                    labels=labels)
    child_ctx = tmp_path / "child"
    child_ctx.mkdir()
    (child_ctx / "Dockerfile").write_text(f"FROM {image_id}\nLABEL child=yes\n")
    child_id = engine.build(child_ctx, labels=session_labels)  # inherits the case label
    running = engine.run(debian_base.ref, ["sleep", "60"], detach=True, labels=labels)
    unrelated = engine.run(debian_base.ref, ["sleep", "60"], detach=True, labels=session_labels)
    try:
        report = engine.cleanup(_as_filter(label))
        assert running.container_id in report.containers
        assert report.images.index(child_id) < report.images.index(image_id)  # children first
        assert not engine.image_exists(image_id) and not engine.image_exists(child_id)
        assert engine.containers_with_label(_as_filter(label)) == []
        assert container_exists(engine, unrelated.container_id or "")
        assert engine.image_exists(debian_base.ref)
    finally:
        engine.cleanup(_as_filter(label))


def test_cleanup_takes_a_build_s_dangling_images_and_no_other_build_s(engine: Engine, debian_base,
                                                                      session_labels, tmp_path: Path) -> None:
    """After a CI run the containerd store held seven dangling 349 MB images at a build's
    own dlbase.build-id LABEL step, without the session label that reaches only a final
    image. Clean-up of the build's labelled image takes the dangling images of its build
    ID too (here one made on purpose: untagged, same build ID, no case label); another
    build's stay."""
    label = case_label()
    ours, other = f"test-{uuid.uuid4().hex[:12]}", f"test-{uuid.uuid4().hex[:12]}"

    def build(build_id: str, payload: str, extra: dict[str, str]) -> str:
        ctx = tmp_path / payload
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {debian_base.ref}\nLABEL dlbase.build-id={build_id}\n"
                                        f"RUN echo {payload} > /payload\n")
        # the build ID as a label too: the engine keeps a caller's, as dlbase's builder passes it
        return engine.build(ctx, labels={"dlbase.build-id": build_id, **extra}, builder="classic")

    final = build(ours, "final", {**session_labels, **label})
    dangling = build(ours, "dangling", {})  # untagged, nothing builds on it
    others = build(other, "other", {})
    try:
        assert dangling in {f"sha256:{d.removeprefix('sha256:')}" for d in engine.dangling_images()}
        report = engine.cleanup(_as_filter(label))
        assert final in report.images and dangling in report.images
        assert not engine.image_exists(final) and not engine.image_exists(dangling)
        assert engine.image_exists(others) and engine.image_exists(debian_base.ref)
        left = engine._api.images(all=True, filters={"label": f"dlbase.build-id={ours}"})
        assert left == [], "steps of the removed build are still there"
    finally:
        engine.cleanup(_as_filter(label))
        for image_id in (dangling, others):
            if engine.image_exists(image_id):
                engine.remove_image(image_id, force=True)
        engine.remove_build_leftovers({ours, other})


def test_has_nvidia_runtime_is_a_bool(engine: Engine) -> None:
    assert isinstance(engine.has_nvidia_runtime(), bool)


def _as_filter(label: dict[str, str]) -> str:
    [(key, value)] = label.items()
    return f"{key}={value}"
