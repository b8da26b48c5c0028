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
import subprocess
import sys
from pathlib import Path

import pytest

from dlbase.build import bake as bake_mod
from dlbase.core.errors import ExitCode
from dlbase.define import bakefile
from dlbase.define.spec import BuildSpec
from dlbase.engine import Engine
from tests.support.build_cli import cli_env
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
    labels = [item for k, v in session_labels.items() for item in ("--label", f"{k}={v}")]
    proc = subprocess.run([sys.executable, "-m", "dlbase", "bake", "--json", "--repository", repo, *labels],
                          cwd=small.root, env=cli_env(small), capture_output=True, text=True, timeout=600)
    assert proc.returncode == ExitCode.MISMATCH, proc.stdout + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # exactly one document
    assert doc["ok"] is False and "no tag was applied" in doc["message"]
    assert "Traceback" not in proc.stderr
    assert not [t for t in _staging_tags(engine) if bakefile.target_name(small.variant) in t]
    assert engine.inspect_image(test_repo["moving"])["Id"] == before  # the moving tag did not move
    assert not any(t.startswith(repo + ":") and t != test_repo["moving"]
                   for img in engine._api.images() for t in (img.get("RepoTags") or []))  # noqa: SLF001
