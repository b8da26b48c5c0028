"""What dlbase hands to users' CI must hold on their machines too: the GitHub Actions
workflow validates against GitHub's published workflow schema (check-jsonschema ships it,
so this works offline), and the bake file parses as HCL (python-hcl2) and names only
Dockerfiles that exist and tags that are the variants' own, valid ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

from dlbase.define import bakefile, render
from dlbase.core import validate
from dlbase.define.project import Project

ROOT = Path(__file__).resolve().parents[2]
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def _validate_workflow(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_workflow_validates_against_githubs_schema() -> None:
    res = _validate_workflow(ROOT / "ci" / "github-actions.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    text = (ROOT / "ci" / "github-actions.yml").read_text(encoding="utf-8")
    broken = tmp_path / "wf.yml"
    broken.write_text(text.replace("runs-on:", "run-on:", 1), encoding="utf-8")
    res = _validate_workflow(broken)
    assert res.returncode != 0 and "run-on" in res.stdout + res.stderr


@pytest.fixture(scope="module")
def bake() -> dict:
    with open(ROOT / "ci" / "docker-bake.hcl", encoding="utf-8") as fh:
        return hcl2.load(fh)


def test_bake_targets_name_existing_dockerfiles_and_the_variants_own_tags(bake: dict) -> None:
    project = Project.discover(ROOT)
    specs = render.specs_of(project)
    moving = {bakefile.target_name(row["variant"]): row["moving"] for row in render.tag_rows(project, specs)}
    targets = {name: body for block in bake["target"] for name, body in block.items()}
    assert sorted(targets) == sorted(moving)
    for name, body in targets.items():
        dockerfile = ROOT / body.get("context", ".") / body["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {body['dockerfile']} does not exist"
        assert render.GENERATED_MARK in dockerfile.read_text(encoding="utf-8")
        for tag in body["tags"]:
            assert tag.startswith("${REGISTRY}"), tag
            repo, _, t = tag.removeprefix("${REGISTRY}").rpartition(":")
            assert repo == project.matrix.repository and t == moving[name], tag
            validate.repository(repo)
            validate.tag(t, where=name)


def test_bake_groups_name_only_defined_targets(bake: dict) -> None:
    targets = {name for block in bake["target"] for name in block}
    groups = {name: body for block in bake["group"] for name, body in block.items()}
    assert "default" in groups
    for name, body in groups.items():
        assert set(body["targets"]) <= targets, name
