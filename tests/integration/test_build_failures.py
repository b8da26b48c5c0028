"""Every way `dlbase build` can fail, driven through the real CLI against the real daemon.

Each case builds a copy of the project (tests/support/small_project.py: the real
templates, a tiny offline lock) in a subprocess, exactly as a user would run it, and
checks what the user is promised for a failed build:

- a non-zero exit code of its own per kind of failure (errors.ExitCode);
- the failing step named on stderr with the last lines of its log, and the full log's
  path, which exists;
- no tag moved: the copy tags into a repository unique to this test session
  (``dlbase-test-<id>/pytorch``), whose moving tag is set beforehand on an image of our
  own and must still point at it afterwards (the real ``dlbase/pytorch`` tags belong to
  builds other people run on the same daemon);
- no containers and no dangling images left by that build: its objects are read off its
  own log (the classic builder labels none of them), and every case puts a step with a
  token unique to the test early in the Dockerfile, so all later layers are its alone.

Every build carries ``--label dlbase.test-session=<session>`` so the session finaliser
removes anything a regression would leave.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from dlbase.build import base
from dlbase.core import errors
from dlbase.engine import Engine
from dlbase.core.errors import ExitCode
from dlbase.define.spec import BuildSpec
from tests.support import second_daemon as second
from tests.support.build_cli import (Outcome, assert_no_tag_moved, assert_one_error, wait_for_line, cli_args, cli_env, edit, insert_after_shell, insert_before_python_env,
                                     render, run_build)
from tests.support.small_project import SmallProject, copy_installer_wheels, make_small_project, make_wheel, sha256

pytestmark = pytest.mark.docker

STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
RUNNING_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
LAYER_RE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")


# ---------------------------------------------------------------- helpers


def log_objects(log_text: str) -> tuple[list[str], list[str]]:
    """(containers, images) this build created, read off its log the way the engine does:
    "Running in" containers, and " ---> id" layers except FROM's and cache hits."""
    containers, images = [], []
    step, cached = "", False
    for line in log_text.splitlines():
        if STEP_RE.match(line):
            step, cached = line, False
            continue
        if line.startswith(" ---> Using cache"):
            cached = True
        if m := RUNNING_RE.match(line):
            containers.append(m.group(1))
        if (m := LAYER_RE.match(line)) and not cached and " : FROM " not in step:
            images.append(m.group(1))
    return containers, images


def containers_matching(engine: Engine, token: str) -> list[str]:
    return [c["Id"][:12] for c in engine._api.containers(all=True)
            if token in str(c.get("Command", ""))]


def container_exists(engine: Engine, container_id: str) -> bool:
    return bool(engine._api.containers(all=True, filters={"id": container_id}))


def dangling(engine: Engine) -> set[str]:
    return {d.removeprefix("sha256:") for d in engine.dangling_images()}


def assert_nothing_left(engine: Engine, token: str, before_dangling: set[str], log_text: str = "",
                        wait: float = 10) -> None:
    """No container of this build (by its log and by the token in its command), no image
    it committed, and no new dangling image that is its. The daemon removes a cancelled
    build's container asynchronously, hence the wait."""
    containers, images = log_objects(log_text)
    deadline = time.monotonic() + wait
    while True:
        left = [c for c in containers if container_exists(engine, c)] + containers_matching(engine, token)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, f"containers left behind: {left}"
    kept = [i for i in images if engine.image_exists(i)]
    assert not kept, f"images this build committed are still there: {kept}"
    ours = set()
    for image_id in dangling(engine) - before_dangling:
        try:
            info = engine.inspect_image(image_id)
        except errors.Missing:
            continue
        if token in json.dumps(info.get("ContainerConfig") or {}) + json.dumps(info.get("Config") or {}) \
                or any(image_id.startswith(i) for i in images):
            ours.add(image_id[:12])
    assert not ours, f"dangling images left by this build: {ours}"


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def small(tmp_path: Path, test_repo: dict[str, str]) -> tuple[SmallProject, str]:
    """A small project tagging into the session's repository, and a token for its steps."""
    sp = make_small_project(tmp_path)
    edit(sp.root / "images" / "matrix.yaml", "repository: dlbase/pytorch", f"repository: {test_repo['repo']}")
    return sp, f"dlbase-test-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------- 1. a bad Dockerfile step


def test_bad_step_names_the_step_shows_the_log_and_cleans_up(engine: Engine, small, session_labels,
                                                             test_repo) -> None:
    sp, token = small
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN={token}",
                             f'RUN echo "{token}: about to fail" >&2 && exit 3')
    render(sp)
    before = dangling(engine)
    out = run_build(sp, session_labels)
    print(f"\n--- bad step ({out.seconds}s), stderr tail:\n" + "\n".join(out.stderr.splitlines()[-14:]))
    assert_one_error(out, ExitCode.BUILD)
    assert re.search(rf"^failing step: Step \d+/\d+ : RUN echo \"{token}: about to fail\"", out.stderr, re.M)
    assert "returned a non-zero code: 3" in out.stderr
    assert "last lines of the build log:" in out.stderr
    assert f"{token}: about to fail" in out.stderr.split("last lines of the build log:")[1]
    log = out.log_path().read_text()
    assert "returned a non-zero code: 3" in log
    assert_no_tag_moved(engine, test_repo)
    assert_nothing_left(engine, token, before, log)
    assert log_objects(log)[1], "the ENV step before the failure should have committed an image"


# ---------------------------------------------------------------- 2. hashes


def test_require_hashes_rejects_a_served_wheel_that_differs(engine: Engine, small, session_labels,
                                                             test_repo, tmp_path: Path) -> None:
    """The Dockerfile's own check: a wheelhouse served as given (`--wheelhouse`, no
    pre-check) holds a wheel with the locked file name but other bytes; the installer (uv,
    fetched per RUN from the installer lock) must refuse it."""
    sp, token = small
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN={token}")
    render(sp)
    other = make_wheel(tmp_path / "foreign-wheelhouse", payload="not the locked bytes")
    assert other.name == sp.wheel.name and sha256(other) != sha256(sp.wheel)
    copy_installer_wheels(other.parent, BuildSpec.of(sp.project().compat, sp.project().matrix.get(sp.variant)))
    before = dangling(engine)
    out = run_build(sp, session_labels, "--wheelhouse", str(other.parent))
    print(f"\n--- hash mismatch ({out.seconds}s), stderr tail:\n" + "\n".join(out.stderr.splitlines()[-16:]))
    assert_one_error(out, ExitCode.BUILD)
    assert re.search(r"^failing step: Step \d+/\d+ : RUN /opt/venv/bin/python -B /opt/dlbase/install_group.py ",
                     out.stderr, re.M)
    assert "Hash mismatch for" in out.stderr
    assert sha256(sp.wheel) in out.stderr and sha256(other) in out.stderr  # expected and got
    assert "not one the lock pins" in out.stderr
    assert "Hash mismatch for" in out.log_path().read_text()
    assert_no_tag_moved(engine, test_repo)
    assert_nothing_left(engine, token, before, out.log_path().read_text())


def test_a_tampered_wheel_in_the_wheelhouse_stops_before_the_build(engine: Engine, small, session_labels,
                                                                    test_repo, tmp_path: Path) -> None:
    sp, _token = small
    tampered = make_wheel(tmp_path / "tampered", payload="tampered")
    sp.wheel.write_bytes(tampered.read_bytes())
    out = run_build(sp, session_labels)
    print(f"\n--- wheelhouse hash mismatch ({out.seconds}s):\n{out.stderr}")
    assert_one_error(out, ExitCode.HASH_MISMATCH)
    assert sp.wheel.name in out.stderr
    assert "step 1/" not in out.stderr  # the daemon was never asked to build
    assert_no_tag_moved(engine, test_repo)


# ---------------------------------------------------------------- 3. the base


def test_missing_bootstrap_base_says_how_to_make_it(engine: Engine, small, session_labels, test_repo) -> None:
    sp, token = small
    missing_tag = f"does-not-exist-{token}"
    edit(sp.root / "images" / "matrix.yaml", "tag: 12-minbase", f"tag: {missing_tag}")
    render(sp)
    out = run_build(sp, session_labels)
    print(f"\n--- missing base ({out.seconds}s):\n{out.stderr}")
    assert_one_error(out, ExitCode.MISSING)
    assert f"dlbase/debian:{missing_tag}" in out.stderr
    assert "dlbase base bootstrap" in out.stderr
    assert not engine.image_exists(f"dlbase/debian:{missing_tag}")
    assert_no_tag_moved(engine, test_repo)


def test_unpullable_registry_base_fails_cleanly(engine: Engine, small, session_labels, test_repo) -> None:
    sp, token = small
    matrix = sp.root / "images" / "matrix.yaml"
    edit(matrix, "    image: dlbase/debian\n    tag: 12-minbase\n    source: bootstrap\n",
         f"    image: 127.0.0.1:1/nothing\n    tag: {token}\n    digest: null\n    source: registry\n")
    render(sp)
    before_containers = {c["Id"] for c in engine._api.containers(all=True)}
    before = dangling(engine)
    out = run_build(sp, session_labels)
    print(f"\n--- unpullable base ({out.seconds}s), stderr tail:\n" + "\n".join(out.stderr.splitlines()[-8:]))
    assert_one_error(out, ExitCode.BUILD)
    assert f"127.0.0.1:1/nothing:{token}" in out.stderr
    assert re.search(r"^failing step: Step 1/\d+ : FROM 127\.0\.0\.1:1/nothing", out.stderr, re.M)
    out.log_path()
    assert not engine.image_exists(f"127.0.0.1:1/nothing:{token}")
    assert not [c for c in engine._api.containers(all=True) if c["Id"] not in before_containers
                and token in str(c.get("Image", ""))]
    assert_nothing_left(engine, token, before, out.log_path().read_text())
    assert_no_tag_moved(engine, test_repo)


# ---------------------------------------------------------------- 4. the daemon goes away


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_daemon_gone_mid_build(small, session_labels, debian_base: base.BaseImage, sig: int) -> None:
    """A private dockerd (the shared one must live) is killed, or stopped in order,
    while a step runs: exit 6, naming the endpoint and the step that was running."""
    if why := second.available():
        pytest.skip(why)
    sp, token = small
    insert_after_shell(sp, f'RUN echo "{token}: sleeping" && sleep 60')
    render(sp)
    with second.second_daemon() as daemon:
        daemon.load_image(debian_base.ref)
        proc = subprocess.Popen(cli_args("build", session_labels=session_labels, builder="classic"), cwd=sp.root,
                                env=cli_env(sp, DOCKER_HOST=daemon.endpoint), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            lines = wait_for_line(proc, f"{token}: sleeping", timeout=90)
            deadline = time.monotonic() + 10
            while not any(token in cmd for cmd in daemon.running_commands()):
                assert time.monotonic() < deadline and proc.poll() is None, "the sleeping step never ran"
                time.sleep(0.2)
            killed_at = time.monotonic()
            daemon.kill(sig, wait=0)  # the CLI must notice by itself
            stdout, rest = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        stderr = "".join(lines) + rest
        seconds = round(time.monotonic() - killed_at, 1)
    print(f"\n--- daemon {signal.Signals(sig).name} mid-build (reported {seconds}s after the kill):\n"
          + "\n".join(stderr.splitlines()[-12:]))
    out = Outcome(proc.returncode, stdout, stderr, seconds)
    assert_one_error(out, ExitCode.DAEMON)
    assert f"error: Docker daemon at {daemon.endpoint} went away during the build" in stderr
    assert re.search(rf"^failing step: Step \d+/\d+ : RUN echo \"{token}: sleeping\"", stderr, re.M)
    assert "tools/host/setup.sh" in stderr
    out.log_path()


# ---------------------------------------------------------------- 5. Ctrl-C


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_mid_step_exits_130_and_leaves_nothing(engine: Engine, small, session_labels, test_repo,
                                                      sig: signal.Signals) -> None:
    """Ctrl-C, and SIGTERM (a CI cancel, `timeout`) the same way: exit 130, nothing left."""
    sp, token = small
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN={token}", f'RUN echo "{token}: sleeping" && sleep 60')
    render(sp)
    before = dangling(engine)
    proc = subprocess.Popen(cli_args("build", session_labels=session_labels, builder="classic"), cwd=sp.root, env=cli_env(sp),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = wait_for_line(proc, f"{token}: sleeping", timeout=120)
        time.sleep(1)  # the step's container is running
        assert containers_matching(engine, token), "the sleeping step should be running"
        sent = time.monotonic()
        proc.send_signal(sig)
        stdout, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    seconds = round(time.monotonic() - sent, 1)
    stderr = "".join(lines) + rest
    print(f"\n--- Ctrl-C (exited {seconds}s after SIGINT):\n" + "\n".join(stderr.splitlines()[-5:]))
    out = Outcome(proc.returncode, stdout, stderr, seconds)
    assert_one_error(out, ExitCode.INTERRUPTED)
    assert re.search(rf"^error: build interrupted at Step \d+/\d+ : RUN echo \"{token}: sleeping\"", stderr, re.M)
    assert_nothing_left(engine, token, before, out.log_path().read_text())
    assert_no_tag_moved(engine, test_repo)


# ---------------------------------------------------------------- 6. no daemon


@pytest.fixture(scope="module")
def idle_project(tmp_path_factory: pytest.TempPathFactory) -> SmallProject:
    return make_small_project(tmp_path_factory.mktemp("idle"))


@pytest.mark.parametrize("endpoint", ["unix:///nonexistent.sock", "tcp://127.0.0.1:1"])
@pytest.mark.parametrize("verb", [["build"], ["base", "bootstrap"]], ids=["build", "base-bootstrap"])
def test_unreachable_daemon_is_one_clear_error(idle_project: SmallProject, endpoint: str, verb: list[str]) -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dlbase", *verb], cwd=idle_project.root,
                          env=cli_env(idle_project, DOCKER_HOST=endpoint), capture_output=True, text=True,
                          timeout=60)
    out = Outcome(proc.returncode, proc.stdout, proc.stderr, round(time.monotonic() - started, 1))
    print(f"\n--- {' '.join(verb)} with DOCKER_HOST={endpoint} ({out.seconds}s):\n{out.stderr}")
    assert_one_error(out, ExitCode.DAEMON)
    assert f"error: Docker daemon at {endpoint} is not reachable\n" in out.stderr
    assert re.search(r"^what to do: .*(tools/host/setup\.sh|dockerd)", out.stderr, re.M)
    cause = re.search(r"^cause: (.*)$", out.stderr, re.M)
    assert cause and len(cause.group(1)) < 80, "the cause should be a few words, not docker-py's reprs"
    assert len(out.stderr.strip().splitlines()) <= 4, out.stderr


# ---------------------------------------------------------------- 7. versions disagree


def test_version_mismatch_refuses_to_tag(engine: Engine, small, session_labels, test_repo) -> None:
    sp, token = small
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN={token}")
    render(sp)
    before = dangling(engine)
    out = run_build(sp, session_labels)
    print(f"\n--- versions disagree ({out.seconds}s), stderr tail:\n" + "\n".join(out.stderr.splitlines()[-12:]))
    assert_one_error(out, ExitCode.MISMATCH)
    assert "the built image is not what the variant says; no tag was applied" in out.stderr
    for line in ("torch: image has None, variant says '2.6.0'",
                 "torchvision: image has None, variant says '0.21.0'",
                 "albumentations: image has None, variant says '2.0.8'",
                 "opencv: image has None, variant says '4.11.0.86'"):
        assert line in out.stderr
    logs = sorted((sp.root / ".dlbase" / "logs").glob("*.log"))
    assert logs, "the build wrote no log"
    assert_no_tag_moved(engine, test_repo)
    assert_nothing_left(engine, token, before, logs[-1].read_text())
