"""`dlbase rebuild-check` on the small integration image (every run) and on the full
default image (DLBASE_FULL_REBUILD_CHECK=1: two no-cache builds of ~6 GB), plus two
concurrent `dlbase build` of one variant (the per-variant lock makes the second wait).

With BuildKit the two builds of the small template-rendered image must give one manifest
digest (nothing excluded), and that digest must survive a plain `docker push` to a real
registry; a template that writes a run-dependent file must be caught and named (layer,
step, file, reason). The classic builder's file-by-file comparison is kept for engines
without buildx (`--builder classic`).

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

from tests.support.registry import registry_binary, running_registry
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


def test_buildkit_rebuild_check_gives_one_digest(engine, debian_base, session_labels, tmp_path):
    """Two no-cache BuildKit builds of the small image: one digest, reported as such, nothing
    excluded, and no image left behind."""
    sp = make_small_project(tmp_path)
    res = run(sp.root, "rebuild-check", "--json", "--builder", "buildkit", *_label(session_labels))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-3000:]
    body = json.loads(res.stdout)
    assert body["reproducible"] is True and body["builder"] == "buildkit"
    assert body["digests"][0] == body["digests"][1] and body["digests"][0].startswith("sha256:")
    assert body["excluded_paths"] == {} and body["compared"] == "manifest digest"
    assert isinstance(body["source_date_epoch"], int) and body["revision"]
    assert "layers" not in body
    assert not engine.image_exists(body["digests"][0])


def test_a_buildkit_digest_survives_a_plain_docker_push(engine, debian_base, session_labels, tmp_path):
    """`docker push` of a BuildKit-built image keeps the manifest digest: the registry
    answers with the image's ID, so a published digest is the one a rebuild reproduces."""
    if registry_binary() is None:
        pytest.skip("docker-registry is not installed (tools/host/setup.sh)")
    from dlbase.build import builder as build_mod
    from dlbase.define.spec import BuildSpec
    from dlbase.registry.client import RegistryClient

    sp = make_small_project(tmp_path / "p")
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    built = build_mod.build(project, spec, engine, tag=False, check_versions=False, builder="buildkit",
                            extra_labels={**session_labels, "dlbase.build-id": "push-digest-test"})
    with running_registry(tmp_path / "reg") as reg:
        repo = f"{reg.host}/dlbase-test-{uuid.uuid4().hex[:8]}/small"
        engine.tag(built.image_id, repo, "1")
        try:
            push = subprocess.run(["docker", "push", f"{repo}:1"], capture_output=True, text=True, timeout=300)
            assert push.returncode == 0, push.stderr[-2000:]
            published = RegistryClient(reg.host).manifest_digest(repo.split("/", 1)[1], "1")
        finally:
            engine.untag(repo, "1")
    assert published == built.image_id


def test_buildkit_rebuild_check_names_the_layer_and_file_that_differ(engine, debian_base, session_labels,
                                                                     tmp_path):
    """A template step that writes a different file on every run: the digests differ, and
    the report names that layer, its step and the file, with "content" as the reason."""
    sp = make_small_project(tmp_path)
    template = sp.root / "templates" / "Dockerfile.j2"
    text = template.read_text()
    marker = "WORKDIR {{ workspace }}\n"  # still root here: the USER step follows
    assert text.count(marker) == 1
    # dated like every template RUN (partials/mtimes.j2), so only the content differs
    step = ('{% from "partials/mtimes.j2" import run_end with context %}'
            "RUN od -An -N8 -tx8 /dev/urandom > /opt/dlbase/nonce{{ run_end() }}\n")
    template.write_text(text.replace(marker, step + marker))
    from dlbase.define import render
    render.write(sp.project())
    res = run(sp.root, "rebuild-check", "--json", "--builder", "buildkit", *_label(session_labels))
    assert res.returncode == 13, res.stdout[-4000:] + res.stderr[-3000:]
    body = json.loads(res.stdout)
    assert body["reproducible"] is False and body["digests"][0] != body["digests"][1]
    assert ["/opt/dlbase/nonce" in layer["step"] for layer in body["layers"]] == [True]
    files = body["layers"][0]["files"]
    assert [(f["path"], f["reasons"]) for f in files] == [("opt/dlbase/nonce", ["content"])]
    assert body["layers"][0]["debian_packages"] == {}
    assert "image_ids" in body and len(body["image_ids"]) == 2
    for image_id in body["image_ids"]:
        assert not engine.image_exists(image_id)


def test_rebuild_check_small_image_is_reproducible(engine, debian_base, session_labels, tmp_path):
    """The classic builder's path: exported filesystems compared file by file."""
    sp = make_small_project(tmp_path)
    before = {i["Id"] for i in engine.images_with_label("dlbase.rebuild-check")}
    res = run(sp.root, "rebuild-check", "--json", "--builder", "classic", *_label(session_labels))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-3000:]
    body = json.loads(res.stdout)
    assert body["reproducible"] is True and body["builder"] == "classic"
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
        ids.append(build_mod.build(project, spec, engine, tag=False, check_versions=False, builder="classic",
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
    # Exactly one waited: whichever took the lock first (the first one started, usually,
    # but on a loaded machine choosing the builder can take it longer than the 1 s head start).
    waited = ["waiting for it to finish" in err for err in (err1, err2)]
    assert sum(waited) == 1, (err1[-1500:], err2[-1500:])
    assert "no tag was applied" in err1 and "no tag was applied" in err2
    from dlbase.define.project import Project
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
    print(json.dumps({k: body.get(k) for k in ("reproducible", "builder", "digests", "build_seconds")}))
    assert res.returncode == 0 and body["reproducible"], json.dumps(
        {k: body.get(k) for k in ("layers", "config", "labels", "python_packages", "debian_packages")},
        indent=1)[:4000]
