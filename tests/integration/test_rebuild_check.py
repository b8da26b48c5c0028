"""`dlbase rebuild-check` on the small integration image (every run) and on the full
default image (DLBASE_FULL_REBUILD_CHECK=1: two no-cache builds of ~6 GB), plus two
concurrent `dlbase build` of one variant (the per-variant lock makes the second wait).

Daemon stopped during a build and Ctrl-C during a build are tested for `build` in
tests/integration/test_build_failures.py; they are not repeated here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.small_project import make_small_project

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def run(root: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "DLBASE_ROOT": str(root)}, timeout=timeout)


def _label(session_labels: dict) -> list[str]:
    return [arg for k, v in session_labels.items() for arg in ("--label", f"{k}={v}")]


def _rebuild_images(engine, run_label: str) -> list[dict]:
    return engine.images_with_label("dlbase.rebuild-check")


def test_rebuild_check_small_image_is_reproducible(engine, debian_base, session_labels, tmp_path):
    sp = make_small_project(tmp_path)
    before = {i["Id"] for i in engine.images_with_label("dlbase.rebuild-check")}
    res = run(sp.root, "rebuild-check", "--json", *_label(session_labels))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-3000:]
    body = json.loads(res.stdout)
    assert body["reproducible"] is True
    assert body["image_ids"][0] != body["image_ids"][1]
    assert min(body["files_compared"]) > 1000
    assert "etc/hostname" in body["excluded_paths"]
    # both untagged images were removed again, no container left
    after = {i["Id"] for i in engine.images_with_label("dlbase.rebuild-check")}
    assert not (set(body["image_ids"]) & after) and after <= before | after
    for image_id in body["image_ids"]:
        assert not engine._api.containers(all=True, filters={"ancestor": image_id})  # noqa: SLF001


def test_rebuild_check_reports_a_difference(engine, debian_base, session_labels, tmp_path):
    """Two builds that really differ (a different wheel) are listed, grouped, exit 13."""
    from dlbase.examine import diff as diff_mod
    from dlbase.build import builder as build_mod
    from dlbase.define.spec import BuildSpec

    ids = []
    for payload in ("one", "two"):
        sp = make_small_project(tmp_path / payload, payload=payload)
        project = sp.project()
        spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
        ids.append(build_mod.build(project, spec, engine, tag=False, check_versions=False,
                                   extra_labels=session_labels).image_id)
    found = diff_mod.diff_images(engine, ids[0], ids[1])
    assert not found.identical
    changed = {name for name, _a, _b in found.groups["files"].changed}
    assert any(p.endswith("dlbase_tiny/__init__.py") for p in changed)
    assert "dlbase.lock-hash" in {k for k, _a, _b in found.groups["labels"].changed}
    assert [k for k, _a, _b in found.groups["python packages"].changed] == ["dlbase_tiny"]


def test_two_concurrent_builds_of_one_variant(engine, debian_base, session_labels, tmp_path):
    """The second build waits for the first (per-variant flock); both end cleanly. The
    small project's image has no torch, so both refuse to tag it (exit 8): the point is
    that neither leaves a tag, a container or a half-built image behind."""
    sp = make_small_project(tmp_path, payload="concurrent")
    # A repository of this test's own: the session's real default image is tagged
    # dlbase/pytorch and carries the same session label.
    matrix = sp.root / "images" / "matrix.yaml"
    matrix.write_text(matrix.read_text().replace("repository: dlbase/pytorch",
                                                 f"repository: dlbase-test-{uuid.uuid4().hex[:8]}/pytorch"))
    env = {**os.environ, "DLBASE_ROOT": str(sp.root)}
    cmd = [sys.executable, "-m", "dlbase", "build", *_label(session_labels)]
    first = subprocess.Popen(cmd, cwd=sp.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    second = subprocess.Popen(cmd, cwd=sp.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    assert first.returncode == 8, err1[-2000:]
    assert second.returncode == 8, err2[-2000:]
    assert "waiting for it to finish" in err2
    assert "no tag was applied" in err1 and "no tag was applied" in err2
    from dlbase.core.project import Project
    repo = Project.discover(sp.root).matrix.repository
    for summary in engine.images_with_label(next(f"{k}={v}" for k, v in session_labels.items())):
        assert not any(t.startswith(repo + ":") for t in summary.get("RepoTags") or [])
    probes = engine.containers_with_label("dlbase.purpose=probe")
    assert not [c for c in probes if c.get("State") == "running"]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DLBASE_FULL_REBUILD_CHECK") != "1",
                    reason="two no-cache builds of the 6 GB default image; set DLBASE_FULL_REBUILD_CHECK=1")
def test_rebuild_check_full_default_image(engine, debian_base, session_labels):
    res = run(ROOT, "rebuild-check", "--json", *_label(session_labels), timeout=3600)
    assert res.stdout, res.stderr[-3000:]
    body = json.JSONDecoder().raw_decode(res.stdout)[0]
    print(json.dumps({k: body[k] for k in ("reproducible", "build_seconds", "files_compared")}))
    assert res.returncode == 0 and body["reproducible"], json.dumps(
        {g: body[g] for g in ("labels", "python_packages", "debian_packages")}, indent=1)[:4000]
