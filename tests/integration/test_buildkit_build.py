"""`dlbase build --builder buildkit` on the real daemon (Docker 26, containerd image store,
buildx 0.13), on a copy of the project whose images are rendered from the real templates
with tiny wheels (tests/support/small_project.py), side by side with the classic builder.

What is checked is what the build promises whichever builder runs: steps and cache hits
shown as progress, the versions read back before any tag is set, no tag and nothing left
on failure (BuildKit makes no containers; the OCI archive is deleted; an image loaded and
then refused is removed), Ctrl-C and SIGTERM handled, and -- BuildKit's own promise --
two builds of one source with one SOURCE_DATE_EPOCH give one image ID (the manifest
digest). Timings are printed, not asserted: the machine is shared.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from dlbase.core.errors import ExitCode
from dlbase.engine import Engine
from tests.support.build_cli import (Outcome, assert_no_tag_moved, assert_one_error, cli_args, cli_env, edit, free_port,
                                     insert_before_python_env, log_of, render, run_build, stand_in_stack,
                                     wait_for_line)
from tests.support.old_buildkit import needs_working_cache_export
from tests.support.registry import registry_binary, running_registry
from tests.support import netns, second_daemon
from tests.support.small_project import SmallProject, make_small_project

pytestmark = pytest.mark.docker

EPOCH = "1700000000"
#: A step's name in BuildKit's log: "[ 9/20] ...", "[stage-1  9/20] ..." (the image's stage; the
#: Dockerfile's first stage, "sources", holds the context's folders).
STEP = r"\[(?:[\w.-]+ )?\s*(\d+)/\d+\]"
# The first install step, as the BuildKit log writes it ("CACHED " before a cache hit).
PIP_STEP = re.compile(rf"^(?:CACHED )?{STEP} RUN /opt/venv/bin/python -B /opt/dlbase/install_group.py ", re.M)


@pytest.fixture(scope="module", autouse=True)
def needs_buildkit(engine: Engine) -> None:
    choice = engine.choose_builder("auto")
    if choice.name != "buildkit":
        pytest.skip(f"BuildKit cannot run here: {choice.reason}")


@pytest.fixture
def small(tmp_path: Path, test_repo: dict[str, str]) -> tuple[SmallProject, str]:
    sp = make_small_project(tmp_path)
    edit(sp.root / "images" / "matrix.yaml", "repository: dlbase/pytorch", f"repository: {test_repo['repo']}")
    return sp, f"dlbase-test-{uuid.uuid4().hex[:12]}"


def own_repository(sp: SmallProject) -> SmallProject:
    """Tag into a repository of this test's own: a build that passes moves its moving tag,
    and the module's ``test_repo`` tag must stay where the failure tests check it."""
    edit(sp.root / "images" / "matrix.yaml", "repository: dlbase/pytorch",
         f"repository: dlbase-test-{uuid.uuid4().hex[:10]}/pytorch")
    return sp


def labelled(engine: Engine, session_labels: dict[str, str]) -> set[str]:
    label = ",".join(f"{k}={v}" for k, v in session_labels.items())
    return {img["Id"] for img in engine.images_with_label(label)}


def scratch_left(sp: SmallProject) -> list[Path]:
    """A build's scratch folders under the project's state folder (must be none): the
    engine's (metadata file) and the staged build context."""
    folder = sp.root / ".dlbase" / "buildkit"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def report_of(out: Outcome) -> dict:
    return json.loads(out.stdout)


# ---------------------------------------------------------------- success, cache, builders side by side


def test_buildkit_and_classic_side_by_side_cold_and_warm(engine: Engine, tmp_path: Path, session_labels) -> None:
    """Both builders on one template-rendered image: cold (--no-cache), then warm after a
    tests/image edit. BuildKit: tagged only after the
    read-back, the ID is the manifest digest, the install steps come from the cache."""
    sp = own_repository(make_small_project(tmp_path))
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN=side-by-side-{uuid.uuid4().hex[:12]}")
    render(sp)
    stand_in_stack(sp)
    port = {"DLBASE_WHEELHOUSE_PORT": str(free_port()), "SOURCE_DATE_EPOCH": EPOCH}
    seconds: dict[str, dict[str, float]] = {}
    results: dict[str, dict] = {}
    for builder in ("buildkit", "classic"):
        cold = run_build(sp, session_labels, "--json", "--no-cache", builder=builder, timeout=900, **port)
        assert cold.code == 0, cold.stderr
        results[builder] = report_of(cold)
        seconds[builder] = {"cold": cold.seconds}
    (sp.root / "tests" / "image" / "test_versions.py").open("a").write("\n# edited by test_buildkit_build\n")
    warm: dict[str, Outcome] = {}
    for builder in ("buildkit", "classic"):
        warm[builder] = run_build(sp, session_labels, builder=builder, timeout=600, **port)
        assert warm[builder].code == 0, warm[builder].stderr
        seconds[builder]["warm"] = warm[builder].seconds
    print(f"\n--- stand-in image, seconds (CLI wall clock): {json.dumps(seconds)}")

    bk = results["buildkit"]
    assert bk["builder"]["name"] == "buildkit" and results["classic"]["builder"]["name"] == "classic"
    assert bk["source_date_epoch"] == int(EPOCH)
    inspect = engine.inspect_image(bk["image_id"])
    assert bk["image_id"] == inspect["Id"] and re.fullmatch(r"sha256:[0-9a-f]{64}", bk["image_id"])
    assert len(bk["tags"]) == 2  # (the classic build that followed moved them onto its own image)
    labels = inspect["Config"]["Labels"]
    assert labels.get("dlbase.build-id") and labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert bk["probe"]["torch"] == "2.6.0"  # read back from inside the image before it was tagged
    # the warm BuildKit build: install steps cached, the tests/image COPY ran again
    log = log_of(warm["buildkit"], sp)
    pip_step = int(PIP_STEP.search(log).group(1))
    assert re.search(rf"step {pip_step}/\d+ \(cached\) RUN /opt/venv/bin/python -B /opt/dlbase/install_group",
                     warm["buildkit"].stderr), warm["buildkit"].stderr
    assert re.search(rf"^{STEP} COPY --from=sources /sources/tests/image/", log, re.M)  # ran (not "CACHED [..]")
    summary = re.search(r"\((\d+) of (\d+) steps from the layer cache\)", warm["buildkit"].stderr)
    assert summary and int(summary.group(1)) >= pip_step - 1, warm["buildkit"].stderr
    assert scratch_left(sp) == []


def test_two_buildkit_builds_with_one_epoch_give_one_image_id(engine: Engine, tmp_path: Path, session_labels) -> None:
    """The stand-in image built twice from nothing (--no-cache) with SOURCE_DATE_EPOCH fixed,
    with zstd layers (its line's choice): BuildKit's zstd encoder at the named level gives
    the same bytes on every build."""
    sp = own_repository(make_small_project(tmp_path))
    stand_in_stack(sp)
    env = {"DLBASE_WHEELHOUSE_PORT": str(free_port()), "SOURCE_DATE_EPOCH": EPOCH}
    first = run_build(sp, session_labels, "--json", "--no-cache", builder="buildkit", timeout=600, **env)
    second = run_build(sp, session_labels, "--json", "--no-cache", builder="buildkit", timeout=600, **env)
    assert first.code == 0 and second.code == 0, first.stderr + second.stderr
    ids = report_of(first)["image_id"], report_of(second)["image_id"]
    print(f"\n--- two --no-cache BuildKit builds ({first.seconds}s, {second.seconds}s): {ids[0]} / {ids[1]}")
    assert ids[0] == ids[1], "two builds of one source and one SOURCE_DATE_EPOCH differ"
    assert report_of(first)["compression"] == "zstd"
    assert engine.inspect_image(ids[0])["Config"]["Labels"]["dlbase.layer-compression"] == "zstd"


# ---------------------------------------------------------------- failures leave nothing


def test_bad_step_names_the_step_and_leaves_nothing(engine: Engine, small, session_labels, test_repo) -> None:
    sp, token = small
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN={token}", f'RUN echo "{token}: about to fail" >&2 && exit 3')
    render(sp)
    before = labelled(engine, session_labels)
    out = run_build(sp, session_labels, builder="buildkit")
    print(f"\n--- BuildKit bad step ({out.seconds}s), stderr tail:\n" + "\n".join(out.stderr.splitlines()[-10:]))
    assert_one_error(out, ExitCode.BUILD)
    assert re.search(rf'^failing step: {STEP} RUN echo "{token}: about to fail"', out.stderr, re.M)
    assert "did not complete successfully: exit code: 3" in out.stderr
    assert f"{token}: about to fail" in out.stderr.split("last lines of the build log:")[1]
    assert "ERROR: failed to solve:" in out.log_path().read_text()
    assert_no_tag_moved(engine, test_repo)
    assert labelled(engine, session_labels) == before, "a failed BuildKit build left an image"
    assert scratch_left(sp) == []


def test_version_mismatch_removes_the_loaded_image(engine: Engine, small, session_labels, test_repo) -> None:
    """The tiny lock has no torch: the image is loaded, read back, refused and removed."""
    sp, token = small
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN={token}")
    render(sp)
    before = labelled(engine, session_labels)
    out = run_build(sp, session_labels, builder="buildkit")
    assert_one_error(out, ExitCode.MISMATCH)
    assert "no tag was applied" in out.stderr
    assert_no_tag_moved(engine, test_repo)
    assert labelled(engine, session_labels) == before, "the refused image is still there"
    assert scratch_left(sp) == []


EXPORTED = re.compile(r"exporting manifest (sha256:[0-9a-f]{64})")


@needs_working_cache_export  # the export hangs in its preparation before it reaches the registry
def test_a_cache_export_that_fails_after_the_image_was_stored_leaves_no_image(
        engine: Engine, small, session_labels, test_repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """buildx stores the image first and exports the registry cache after it, so a
    --cache-to that no registry answers fails a build whose image is already in the store:
    that image goes. An equal image that was there before the build (the same inputs,
    built earlier) is not this build's and stays."""
    from dlbase.build import builder as build_mod
    from dlbase.define.spec import BuildSpec

    sp, token = small
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN={token}")
    render(sp)
    port = free_port()
    env = {"DLBASE_WHEELHOUSE_PORT": str(port), "SOURCE_DATE_EPOCH": EPOCH}
    nowhere = f"127.0.0.1:{free_port()}/dlbase-cache/{token}:cache"  # nothing listens there
    before = labelled(engine, session_labels)
    out = run_build(sp, session_labels, "--cache-to", nowhere, builder="buildkit", **env)
    assert_one_error(out, ExitCode.BUILD)
    log = out.log_path().read_text()
    exported = EXPORTED.search(log)
    assert exported and "exporting cache to registry" in log, log[-3000:]
    assert not engine.image_exists(exported.group(1)), "the image stored before the cache export failed stayed"
    assert labelled(engine, session_labels) == before, "a failed BuildKit build left an image"
    assert_no_tag_moved(engine, test_repo)
    assert scratch_left(sp) == []

    # the same inputs built (and kept) first: the failing build then stores nothing new
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # what the CLI builds saw
    kept = build_mod.build(project, spec, engine, tag=False, check_versions=False, builder="buildkit",
                           extra_labels=session_labels).image_id
    assert kept == exported.group(1), "the same inputs gave another digest: the check below would prove nothing"
    again = run_build(sp, session_labels, "--cache-to", nowhere, builder="buildkit", **env)
    assert_one_error(again, ExitCode.BUILD)
    assert engine.image_exists(kept), "a failed build removed an image that was there before it"
    engine.remove_image(kept, force=True)


def start_sleeping_build(sp: SmallProject, token: str, session_labels) -> tuple[subprocess.Popen, str, list[str]]:
    """`dlbase build` of an image with a step that sleeps, read until that step runs."""
    # bash execs the last command of `a && b`, so the token is not in the sleeping process's
    # command line: a sleep of a length of this test's own is.
    naps = f"60.{uuid.uuid4().int % 10**6:06d}"
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN={token}", f'RUN echo "{token}: sleeping" && sleep {naps}')
    render(sp)
    # SIGINT reset to its default in the child: a pytest started from a background job
    # inherits SIGINT ignored, and a Python started so never sees Ctrl-C.
    proc = subprocess.Popen(cli_args("build", session_labels=session_labels, builder="buildkit"), cwd=sp.root,
                            env=cli_env(sp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = wait_for_line(proc, f"{token}: sleeping", timeout=180)
        time.sleep(1)
        assert step_processes(naps), "the sleeping step should be running"
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc, naps, lines


def wait_gone(naps: str, sp: SmallProject, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while (step_processes(naps) or buildx_processes(sp)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not step_processes(naps), "the step BuildKit ran is still running"
    assert not buildx_processes(sp), "buildx is still running"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_stops_buildx_and_leaves_nothing(engine: Engine, small, session_labels, test_repo,
                                                   sig: signal.Signals) -> None:
    sp, token = small
    before = labelled(engine, session_labels)
    proc, naps, lines = start_sleeping_build(sp, token, session_labels)
    try:
        sent = time.monotonic()
        proc.send_signal(sig)
        stdout, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    seconds = round(time.monotonic() - sent, 1)
    stderr = "".join(lines) + rest
    print(f"\n--- BuildKit {signal.Signals(sig).name} (exited {seconds}s after it):\n"
          + "\n".join(stderr.splitlines()[-4:]))
    out = Outcome(proc.returncode, stdout, stderr, seconds)
    assert_one_error(out, ExitCode.INTERRUPTED)
    assert re.search(rf'^error: build interrupted at {STEP} RUN echo "{token}: sleeping"', stderr, re.M)
    wait_gone(naps, sp)
    assert labelled(engine, session_labels) == before
    assert scratch_left(sp) == []
    assert_no_tag_moved(engine, test_repo)


def test_sigkill_of_dlbase_still_stops_buildx_and_the_next_build_sweeps_its_folder(
        engine: Engine, small, session_labels, test_repo) -> None:
    """SIGKILL gives dlbase no chance to stop anything: buildx, told by the kernel when its
    parent dies (PR_SET_PDEATHSIG), cancels the build; the next build removes the folders
    the killed one left, its staged context and the engine's (their owner's pid is gone)."""
    sp, token = small
    before = labelled(engine, session_labels)
    proc, naps, _lines = start_sleeping_build(sp, token, session_labels)
    proc.kill()
    proc.communicate(timeout=30)
    wait_gone(naps, sp, within=30)
    left = scratch_left(sp)
    # what the killed build could not remove: one staged context, one engine folder
    assert sorted(p.name.rsplit("-", 1)[0] for p in left) == ["dlbase-buildkit", "dlbase-context"], left
    assert labelled(engine, session_labels) == before
    assert_no_tag_moved(engine, test_repo)
    # the next build sweeps it, even one that fails (here its step exits 3 instead of sleeping)
    edit(sp.root / "templates" / "partials" / "python_env.j2", f"sleep {naps}", "exit 3")
    render(sp)
    out = run_build(sp, session_labels, builder="buildkit", timeout=600)
    assert_one_error(out, ExitCode.BUILD)
    assert scratch_left(sp) == [], "the dead build's folder is still there"


def step_processes(naps: str) -> list[str]:
    """Host processes running ``sleep NAPS`` (BuildKit runs steps with runc, as processes
    of the host, not as containers the API lists)."""
    proc = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True)
    return [line for line in proc.stdout.splitlines() if f"sleep {naps}" in line]


def buildx_processes(sp: SmallProject) -> list[str]:
    proc = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True)
    return [line for line in proc.stdout.splitlines() if "buildx build" in line and str(sp.root) in line]


# ---------------------------------------------------------------- the registry cache


def _cold_daemon_cannot_run() -> str | None:
    if registry_binary() is None:
        return "docker-registry is not installed (tools/host/setup.sh)"
    return second_daemon.available() or netns.available()


@needs_working_cache_export
@pytest.mark.skipif(_cold_daemon_cannot_run() is not None, reason=str(_cold_daemon_cannot_run()))
def test_an_empty_daemon_rebuilds_only_the_changed_group_from_the_registry_cache(
        engine: Engine, debian_base, session_labels, tmp_path: Path) -> None:
    """The CI promise of --cache-to/--cache-from: one machine exports every layer group's
    cache to a registry; a daemon that has never built anything (a private dockerd with
    the containerd store, in a network namespace with no route out) reads it and, after a
    tests/image edit, runs only the steps after that COPY. The apt and pip steps cannot
    run in that namespace (no mirror, no PyPI), so a build that passes there took them
    from the registry cache, and the log says each was CACHED."""
    sp, token = own_repository(make_small_project(tmp_path)), f"dlbase-test-{uuid.uuid4().hex[:12]}"
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN={token}")
    render(sp)
    stand_in_stack(sp)
    env = {"DLBASE_WHEELHOUSE_PORT": str(free_port()), "SOURCE_DATE_EPOCH": EPOCH}
    with running_registry(tmp_path / "registry") as registry:
        ref = f"{registry.host}/dlbase-cache/{token}:cache"
        exported = run_build(sp, session_labels, "--cache-to", ref, builder="buildkit", timeout=600, **env)
        assert exported.code == 0, exported.stderr
        tags = __import__("requests").get(f"{registry.url}/dlbase-cache/{token}/tags/list", timeout=10).json()
        assert tags.get("tags") == ["cache"], tags
        log = log_of(exported, sp)
        assert "writing cache manifest" in log or "exporting cache to registry" in log
        pip_step = int(PIP_STEP.search(log).group(1))
        (sp.root / "tests" / "image" / "test_versions.py").open("a").write("\n# edited on the CI machine\n")
        registry.stop()
        with netns.private_netns() as ns:
            registry.start(netns=ns)  # the same port and storage, now on that namespace's loopback
            with second_daemon.second_daemon(config={"features": {"containerd-snapshotter": True}},
                                             netns=ns) as empty:
                client = __import__("docker").DockerClient(base_url=empty.endpoint, timeout=30)
                try:
                    assert client.images.list() == [] and client.df().get("BuildCache") in (None, [])
                    empty.load_image(debian_base.ref)  # what a CI machine bootstraps first
                finally:
                    client.close()
                started = time.monotonic()
                proc = subprocess.run(netns.inside(ns, cli_args("build", "--cache-from", ref,
                                                                  session_labels=session_labels,
                                                                  builder="buildkit")),
                                      cwd=sp.root, env=cli_env(sp, DOCKER_HOST=empty.endpoint, **env),
                                      capture_output=True, text=True, timeout=600)
                seconds = round(time.monotonic() - started, 1)
                imported = Outcome(proc.returncode, proc.stdout, proc.stderr, seconds)
                assert imported.code == 0, imported.stderr + empty.log_tail()
    log = log_of(imported, sp)
    assert f"importing cache manifest from {ref}" in log
    # every step up to the edit came from the registry: the apt step included, which could
    # not have run in a namespace with no mirror
    assert re.search(rf"^CACHED {STEP} RUN .*apt-get", log, re.M), log[-3000:]
    assert re.search(rf"step {pip_step}/\d+ \(cached\) RUN /opt/venv/bin/python -B /opt/dlbase/install_group",
                     imported.stderr), imported.stderr
    assert re.search(rf"^{STEP} COPY --from=sources /sources/tests/image/", log, re.M), log[-3000:]  # the edit ran
    summary = re.search(r"\((\d+) of (\d+) steps from the layer cache\)", imported.stderr)
    assert summary and int(summary.group(1)) >= pip_step - 1, imported.stderr
    print(f"\n--- registry cache: export build {exported.seconds}s (this daemon), "
          f"import build {imported.seconds}s (an empty daemon, {summary.group(1)} of {summary.group(2)} steps cached)")


def test_cache_to_with_the_classic_builder_is_refused(small, session_labels) -> None:
    sp, _token = small
    out = run_build(sp, session_labels, "--cache-to", "127.0.0.1:1/c:cache", builder="classic")
    assert_one_error(out, ExitCode.INVALID_INPUT)
    assert "--builder buildkit" in out.stderr
