"""`docker buildx bake` for real, on the small project (tests/support/small_project.py):
its default variant rendered from the real templates with a one-wheel lock, so a bake takes
seconds, not the 6 GB of the real image.

What is checked: the bake file and `dlbase bake`'s overrides build the variant on this
daemon with the wheelhouse served on loopback (the tiny wheel is only there: no index has
it), the image carries the variant's labels and the build-time ones, and nothing of a run
is left behind: the image is removed afterwards, and a run whose read-back fails (no torch
in the small image) leaves no tag at all."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlbase.build import bake as bake_mod
from dlbase.core.errors import ExitCode
from dlbase.define import bakefile
from dlbase.define.spec import BuildSpec
from dlbase.engine import Engine
from tests.support.build_cli import cli_env, wait_for_line
from tests.support.old_buildkit import needs_working_cache_export
from tests.support.small_project import SmallProject, make_small_project

EPOCH = "1700000000"  # 2023-11-14T22:13:20Z


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, debian_base) -> SmallProject:
    return make_small_project(tmp_path_factory.mktemp("bake"))


def _staging_tags(engine: Engine) -> list[str]:
    return [t for img in engine._api.images() for t in (img.get("RepoTags") or [])  # noqa: SLF001 - listing only
            if t.startswith(bake_mod.STAGING_REPO + "/")]


def test_bake_builds_the_variant_with_its_labels_and_the_image_is_removed_afterwards(
        small: SmallProject, engine: Engine, session_labels: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    project = small.project()
    lines: list[str] = []
    [result] = bake_mod.bake(project, engine, [], on_line=lines.append, extra_labels=session_labels,
                             check_versions=False, tag=False)
    staging = result.tags[0]
    try:
        assert result.variant == small.variant and staging.startswith(bake_mod.STAGING_REPO + "/")
        assert any("install_group.py" in ln for ln in lines), "bake's progress lines did not reach on_line"
        info = engine.inspect_image(staging)
        assert info["Id"] == result.image_id
        labels = info["Config"]["Labels"]
        for key, value in BuildSpec.of(project.compat, project.matrix.get(small.variant)).static_labels().items():
            assert labels.get(key) == value, key
        assert labels["dlbase.lock-hash"] == result.lock_hash
        assert labels["dlbase.layer-compression"] == "zstd"  # the line's choice, written by bake's exporter
        assert labels["org.opencontainers.image.base.digest"] == result.base_digest
        assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
        assert labels["org.opencontainers.image.version"].endswith(result.lock_hash)
        for key, value in session_labels.items():
            assert labels[key] == value
        # BuildKit took SOURCE_DATE_EPOCH for the image's own time, not the wall clock
        assert info["Created"].startswith("2023-11-14T22:13:20")
        # the tiny wheel came from the served wheelhouse (no index has it)
        run = engine.run(result.image_id, ["python", "-c", "import dlbase_tiny; print('tiny-ok')"],
                         timeout=120, entrypoint=[], labels=session_labels)
        assert "tiny-ok" in run.output
    finally:
        repo, _, tag = staging.rpartition(":")
        engine.untag(repo, tag)
    assert not engine.image_exists(staging)
    assert not engine.image_exists(result.image_id)
    assert not (project.state_dir / "bake").exists() or not list((project.state_dir / "bake").iterdir())


def test_a_bake_whose_read_back_fails_tags_nothing(small: SmallProject, engine: Engine,
                                                   session_labels: dict[str, str], test_repo: dict) -> None:
    repo = test_repo["repo"]
    before = engine.inspect_image(test_repo["moving"])["Id"]
    staged_before = set(_staging_tags(engine))  # an earlier, killed run's are not this run's
    labels = [item for k, v in session_labels.items() for item in ("--label", f"{k}={v}")]
    proc = subprocess.run([sys.executable, "-m", "dlbase", "bake", "--json", "--repository", repo, *labels],
                          cwd=small.root, env=cli_env(small), capture_output=True, text=True, timeout=600)
    assert proc.returncode == ExitCode.MISMATCH, proc.stdout + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # exactly one document
    assert doc["ok"] is False and "no tag was applied" in doc["message"]
    assert "Traceback" not in proc.stderr
    assert not [t for t in set(_staging_tags(engine)) - staged_before if bakefile.target_name(small.variant) in t]
    assert engine.inspect_image(test_repo["moving"])["Id"] == before  # the moving tag did not move
    assert not any(t.startswith(repo + ":") and t != test_repo["moving"]
                   for img in engine._api.images() for t in (img.get("RepoTags") or []))  # noqa: SLF001


@needs_working_cache_export
def test_a_registry_cache_is_written_and_read_per_variant(small: SmallProject, engine: Engine,
                                                           session_labels: dict[str, str], tmp_path: Path) -> None:
    """The workflow's cache settings on a real registry (127.0.0.1): `--cache-to ...,mode=max`
    leaves a cache manifest under buildcache-<variant>, and the next run imports it."""
    import requests

    from tests.support.registry import running_registry

    with running_registry(tmp_path) as reg:
        ref = f"{reg.host}/cache/pytorch:buildcache-{{variant}}"
        project = small.project()
        runs: list[list[str]] = []
        results = []
        try:
            for cache_to in ([f"type=registry,ref={ref},mode=max"], []):
                runs.append([])
                results += bake_mod.bake(project, engine, [small.variant], on_line=runs[-1].append,
                                         extra_labels=session_labels, check_versions=False, tag=False,
                                         cache_from=[f"type=registry,ref={ref}"], cache_to=cache_to)
            tag = f"buildcache-{small.variant}"
            res = requests.get(f"{reg.url}/cache/pytorch/manifests/{tag}", timeout=10, headers={
                "Accept": "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"})
            assert res.status_code == 200, res.text
            layers = res.json().get("manifests") or res.json().get("layers") or []
            assert len(layers) >= 3, res.text[:500]  # mode=max: the steps' layers, not only the last
            asked = re.compile(r"^#\d+ importing cache manifest from " + re.escape(f"{reg.host}/cache/pytorch:{tag}"))
            first, second = runs
            # the first run asked, found nothing yet (bake goes on), built, and wrote the cache
            assert any(asked.match(ln) for ln in first) and any("not found" in ln and reg.host in ln for ln in first)
            assert any(re.match(r"^#\d+ writing cache manifest sha256:", ln) for ln in first), "\n".join(first[-20:])
            # the second found it
            assert any(asked.match(ln) for ln in second)
            assert any("inferred cache manifest type" in ln for ln in second), "\n".join(second[:40])
            assert not any("not found" in ln and reg.host in ln for ln in second)
        finally:
            for r in results:
                repo, _, t = r.tags[0].rpartition(":")
                engine.untag(repo, t)
    assert not any(engine.image_exists(r.tags[0]) for r in results)


def test_sigterm_mid_step_exits_130_and_leaves_no_tag(tmp_path: Path, engine: Engine,
                                                      session_labels: dict[str, str]) -> None:
    """SIGTERM (a CI cancel) while bake runs a step: bake is interrupted, exit 130, one
    error, no staging tag of the run left, and the compose file of the run is gone."""
    import signal
    import time
    import uuid

    from tests.support.build_cli import cli_args, insert_before_python_env, render

    sp = make_small_project(tmp_path)
    token = f"dlbase-test-{uuid.uuid4().hex[:12]}"
    insert_before_python_env(sp, f'RUN echo "{token}: sleeping" && sleep 120')
    render(sp)
    proc = subprocess.Popen(cli_args("bake", session_labels=session_labels), cwd=sp.root, env=cli_env(sp),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = wait_for_line(proc, f"{token}: sleeping", timeout=300)
        time.sleep(2)  # the step runs
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _stdout, rest = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    seconds = time.monotonic() - sent
    stderr = "".join(lines) + rest
    assert proc.returncode == ExitCode.INTERRUPTED, stderr[-3000:]
    assert "Traceback" not in stderr and len(re.findall(r"^error: ", stderr, re.M)) == 1, stderr[-3000:]
    assert seconds < 60, f"bake took {seconds:.0f}s to stop"
    assert not [t for t in _staging_tags(engine) if bakefile.target_name(sp.variant) in t]
    assert not list((sp.root / ".dlbase" / "bake").glob("*.yml"))
