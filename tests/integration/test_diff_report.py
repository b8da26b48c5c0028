"""`dlbase diff` and `dlbase report` against real images on the daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dlbase.build import builder as build_mod
from dlbase.verify import records
from dlbase.define.spec import BuildSpec

from tests.support.small_project import make_small_project

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def two_images(engine, debian_base, session_labels, tmp_path_factory):
    out = []
    for payload in ("left", "right"):
        sp = make_small_project(tmp_path_factory.mktemp(payload), payload=payload)
        project = sp.project()
        spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
        res = build_mod.build(project, spec, engine, tag=False, check_versions=False, extra_labels=session_labels)
        out.append((sp, res))
    return out


def dlbase(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "DLBASE_ROOT": str(root)}, timeout=600)


def test_diff_table_and_json(two_images):
    (sp, a), (_sp, b) = two_images
    res = dlbase(sp.root, "diff", a.image_id, b.image_id, "--json")
    assert res.returncode == 0, res.stderr
    body = json.loads(res.stdout)
    assert body["identical"] is False
    assert {c["name"] for c in body["labels"]["changed"]} >= {"dlbase.lock-hash", "dlbase.build-id"}
    assert [c["name"] for c in body["python_packages"]["changed"]] == ["dlbase_tiny"]
    assert body["debian_packages"] == {"added": [], "removed": [], "changed": []}
    changed = [c["name"] for c in body["files"]["changed"]]
    assert any(p.endswith("site-packages/dlbase_tiny/__init__.py") for p in changed)
    table = dlbase(sp.root, "diff", a.image_id, b.image_id)
    assert table.returncode == 0, table.stderr
    assert "differences" in table.stdout and "dlbase_tiny/__init__.py" in table.stdout
    same = dlbase(sp.root, "diff", a.image_id, a.image_id)
    assert same.returncode == 0 and "no differences" in same.stderr


def test_report_table_and_json(two_images):
    sp, a = two_images[0]
    records.record(sp.project(), a.image_id, passed=True, summary={"simulated": True})
    res = dlbase(sp.root, "report", a.image_id, "--json")
    assert res.returncode == 0, res.stderr
    body = json.loads(res.stdout)
    assert body["image_id"] == a.image_id and body["variant"] == sp.variant
    assert body["lock_hash"] == a.lock_hash and body["base"]["ref"] == "dlbase/debian:12-minbase"
    assert body["verification"]["status"] == "passed"
    assert body["packages"].get("dlbase_tiny") == "1.0"
    sbom = json.loads(Path(body["sbom_file"]).read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
    table = dlbase(sp.root, "report", a.image_id)
    assert table.returncode == 0, table.stderr
    assert "lock hash" in table.stdout and a.lock_hash in table.stdout and "dlbase_tiny" in table.stdout
    missing = dlbase(sp.root, "report", "no-such-image:nope")
    assert missing.returncode == 14 and "no image" in missing.stderr
