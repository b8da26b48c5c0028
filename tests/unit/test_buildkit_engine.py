"""Choosing the builder, the buildx command line, and the BuildKit engine's error paths.

The choice is pure (its two facts handed in). The error paths run the real engine code
against a fake ``docker`` CLI (a script replaying a recorded buildx stream), because a
missing buildx or a failing step must be shown without breaking the shared daemon."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from dlbase.core import errors
from dlbase.engine import Engine
from dlbase.engine.builderchoice import choose
from dlbase.engine.buildkit import BuildKitOptions, buildx_argv, cache_spec

DATA = Path(__file__).parent / "data" / "buildkit-streams"
BUILDX = "github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3"


# ---------------------------------------------------------------- the choice


def test_auto_takes_buildkit_with_buildx_and_the_containerd_store() -> None:
    choice = choose("auto", buildx=BUILDX, containerd_store=True)
    assert choice.name == "buildkit" and choice.requested == "auto"
    assert "0.13.1" in choice.reason and "containerd" in choice.reason
    assert choice.to_dict() == {"name": "buildkit", "requested": "auto", "reason": choice.reason}


@pytest.mark.parametrize("buildx,store,why", [
    (None, True, "buildx is not installed"),
    (BUILDX, False, "does not use the containerd image store"),
])
def test_auto_falls_back_to_classic_and_says_why(buildx: str | None, store: bool, why: str) -> None:
    choice = choose("auto", buildx=buildx, containerd_store=store)
    assert choice.name == "classic" and why in choice.reason


@pytest.mark.parametrize("buildx,store,why", [
    (None, True, "docker buildx version` does not answer"),
    (BUILDX, False, "containerd image store"),
])
def test_asking_for_buildkit_where_it_cannot_run_is_a_typed_error(buildx: str | None, store: bool, why: str) -> None:
    with pytest.raises(errors.Missing) as info:
        choose("buildkit", buildx=buildx, containerd_store=store)
    assert why in info.value.message and "--builder classic" in (info.value.hint or "")


def test_classic_is_always_there_and_unknown_names_are_refused() -> None:
    assert choose("classic", buildx=BUILDX, containerd_store=True).name == "classic"
    with pytest.raises(errors.InvalidInput):
        choose("kaniko", buildx=BUILDX, containerd_store=True)


# ---------------------------------------------------------------- the command line


def options(**over) -> BuildKitOptions:
    base = dict(context_dir="/ctx", dockerfile="images/v/Dockerfile",
                metadata_file="/tmp/x/metadata.json", buildargs={"WHEELHOUSE": "http://127.0.0.1:1/"},
                labels={"dlbase.build-id": "b1"}, network_mode="host")
    return BuildKitOptions(**{**base, **over})


def test_buildx_argv_asks_for_what_equal_digests_need() -> None:
    argv = buildx_argv(options())
    assert argv[:6] == ["buildx", "build", "--builder", "default", "--progress", "rawjson"]
    assert "--provenance=false" in argv and "--sbom=false" in argv
    # straight into the store, OCI media types (the digest a push keeps), nothing rewritten:
    # the layers are already the same bytes (partials/mtimes.j2, dlbase.build.context)
    assert argv[argv.index("--output") + 1] == "type=image,oci-mediatypes=true,compression=gzip,force-compression=true"
    assert not any("rewrite-timestamp" in a for a in argv)
    assert argv[argv.index("--file") + 1] == "/ctx/images/v/Dockerfile" and argv[-1] == "/ctx"
    assert argv[argv.index("--network") + 1] == "host"
    assert argv[argv.index("--build-arg") + 1] == "WHEELHOUSE=http://127.0.0.1:1/"
    assert argv[argv.index("--label") + 1] == "dlbase.build-id=b1"
    assert "--no-cache" not in argv and "--cache-to" not in argv


def test_buildx_argv_caches_and_no_cache() -> None:
    argv = buildx_argv(options(nocache=True, cache_from=("127.0.0.1:5000/c:cache",), cache_to="127.0.0.1:5000/c:cache"))
    assert "--no-cache" in argv
    assert argv[argv.index("--cache-from") + 1] == "type=registry,ref=127.0.0.1:5000/c:cache"
    assert argv[argv.index("--cache-to") + 1] == "type=registry,ref=127.0.0.1:5000/c:cache,mode=max"
    assert cache_spec("type=inline", export=True) == "type=inline"  # buildx's own syntax passes through


# ---------------------------------------------------------------- error paths (a fake docker CLI)


def fake_docker(tmp: Path, stream: str, returncode: int) -> Path:
    """A ``docker`` that answers ``buildx version``, and for ``buildx build`` writes half a
    metadata file, replays a recorded stream on stderr and exits ``returncode``."""
    script = tmp / "docker"
    script.write_text(f"""#!{sys.executable}
import sys
args = sys.argv[1:]
if args[:2] == ["buildx", "version"]:
    print("{BUILDX}")
    sys.exit(0)
if args[:2] == ["buildx", "build"]:
    open(args[args.index("--metadata-file") + 1], "w").write('{{"containerimage.dig')
    sys.stderr.write(open({str(DATA / stream)!r}).read())
    sys.exit({returncode})
sys.exit(99)
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def context(tmp: Path) -> Path:
    ctx = tmp / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    return ctx


def test_a_failing_step_is_build_failed_and_leaves_no_scratch(tmp_path: Path) -> None:
    engine = Engine()
    engine.docker_cli = (str(fake_docker(tmp_path, "failed-step.rawjson", 1)),)
    work = tmp_path / "work"
    log = tmp_path / "build.log"
    with pytest.raises(errors.BuildFailed) as info:
        engine.build(context(tmp_path), builder="buildkit", log_path=log, work_dir=work)
    assert info.value.step == '[3/4] RUN echo "about to fail" >&2 && exit 3'
    assert "about to fail" in info.value.log_tail and info.value.exit_code == errors.ExitCode.BUILD
    assert list(work.iterdir()) == [], "the scratch folder (a half-written metadata file) stayed"
    assert "ERROR: failed to solve:" in log.read_text()


def test_missing_buildx_is_a_typed_error_with_a_hint(tmp_path: Path) -> None:
    engine = Engine()
    engine.docker_cli = (str(tmp_path / "no-such-docker"),)
    assert engine.buildx_version() is None
    with pytest.raises(errors.Missing) as info:
        engine.build(context(tmp_path), builder="buildkit", work_dir=tmp_path / "work")
    assert "buildx" in info.value.message and "--builder classic" in (info.value.hint or "")


def test_cache_to_with_the_classic_builder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput) as info:
        Engine().build(context(tmp_path), builder="classic", cache_to="127.0.0.1:5000/c:cache")
    assert "--builder buildkit" in (info.value.hint or "")


def test_the_engine_hands_buildx_the_epoch_and_the_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDX_BUILDER", "someone-elses")
    env = Engine(base_url="tcp://127.0.0.1:2375")._cli_env(1700000000)
    assert env["SOURCE_DATE_EPOCH"] == "1700000000" and env["DOCKER_HOST"] == "tcp://127.0.0.1:2375"
    assert "BUILDX_BUILDER" not in env and os.environ["BUILDX_BUILDER"] == "someone-elses"


# ---------------------------------------------------------------- one SOURCE_DATE_EPOCH


def test_one_epoch_for_the_label_and_buildx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit's time, unless SOURCE_DATE_EPOCH says otherwise; the `created` label is
    that same instant."""
    import subprocess

    from dlbase.build.inputs import created_text, source_date_epoch

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert source_date_epoch(tmp_path) == 0  # no repository: the epoch itself, never the wall clock
    env = {**os.environ, "GIT_AUTHOR_DATE": "@1712345678 +0000", "GIT_COMMITTER_DATE": "@1712345678 +0000",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True)
    assert source_date_epoch(tmp_path) == 1712345678
    assert created_text(source_date_epoch(tmp_path)) == "2024-04-05T19:34:38Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert source_date_epoch(tmp_path) == 1700000000 and created_text(1700000000) == "2023-11-14T22:13:20Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(errors.InvalidInput):
        source_date_epoch(tmp_path)


def test_the_buildkit_build_id_follows_the_inputs(tmp_path: Path) -> None:
    from dlbase.engine.buildkit import inputs_build_id

    ctx = context(tmp_path)
    one = inputs_build_id(ctx, "Dockerfile", {"A": "1"}, {"l": "x"}, 1700000000)
    assert one == inputs_build_id(ctx, "Dockerfile", {"A": "1"}, {"l": "x"}, 1700000000)
    assert one != inputs_build_id(ctx, "Dockerfile", {"A": "2"}, {"l": "x"}, 1700000000)
    assert one != inputs_build_id(ctx, "Dockerfile", {"A": "1"}, {"l": "x"}, 1700000001)
    (ctx / "Dockerfile").write_text("FROM scratch\nLABEL other=1\n")
    assert one != inputs_build_id(ctx, "Dockerfile", {"A": "1"}, {"l": "x"}, 1700000000)
