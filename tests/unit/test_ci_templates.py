"""The files rendered for users' CI (bake file, GitHub Actions workflow), checked by structure:
there is no buildx or GitHub runner here, so the test reads what they would read."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML

from dlbase.core.project import Project
from dlbase.define import bakefile

ROOT = Path(__file__).resolve().parents[2]


def test_workflow_has_one_image_job_per_variant_and_pushes_only_after_verify() -> None:
    project = Project.discover(ROOT)
    wf = YAML(typ="safe").load((ROOT / "ci" / "github-actions.yml").read_text())
    variants = wf["jobs"]["image"]["strategy"]["matrix"]["variant"]
    assert variants == [v.name for v in project.matrix.variants]
    runs = [s.get("run", "") for s in wf["jobs"]["image"]["steps"]]
    build = next(i for i, r in enumerate(runs) if r.startswith("dlbase build"))
    verify = next(i for i, r in enumerate(runs) if r.startswith("dlbase verify"))
    push = next(i for i, r in enumerate(runs) if r.startswith("dlbase push"))
    assert build < verify < push
    static = [s.get("run", "") for s in wf["jobs"]["static"]["steps"]]
    assert "dlbase render --check" in static and "dlbase lint" in static
    text = (ROOT / "ci" / "github-actions.yml").read_text()
    assert "password" not in text.lower().replace("registry_password", "")


def test_bake_file_has_a_target_per_variant_with_its_dockerfile_and_moving_tag() -> None:
    project = Project.discover(ROOT)
    text = (ROOT / "ci" / "docker-bake.hcl").read_text()
    targets = re.findall(r'^target "([^"]+)" \{', text, flags=re.M)
    assert targets == [bakefile.target_name(v.name) for v in project.matrix.variants]
    for v in project.matrix.variants:
        block = text.split(f'target "{bakefile.target_name(v.name)}" {{', 1)[1].split("\n}", 1)[0]
        assert f'dockerfile = "images/{v.name}/Dockerfile"' in block
        major_minor = ".".join(v.torch.split(".")[:2]).replace(".", r"\.")
        assert re.search(rf'tags\s+= \["\$\{{REGISTRY\}}dlbase/pytorch:{major_minor}-{v.line}-', block)
    assert f'targets = ["{bakefile.target_name(project.matrix.default)}"]' in text
