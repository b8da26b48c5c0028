"""The files rendered for users' CI (bake file, GitHub Actions workflow), checked by structure:
there is no buildx or GitHub runner here, so the test reads what they would read."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML

from dlbase.define.project import Project
from dlbase.define import bakefile

ROOT = Path(__file__).resolve().parents[2]


def test_workflow_has_one_image_job_per_variant_and_pushes_only_after_verify() -> None:
    project = Project.discover(ROOT)
    wf = YAML(typ="safe").load((ROOT / "ci" / "github-actions.yml").read_text())
    variants = wf["jobs"]["image"]["strategy"]["matrix"]["variant"]
    assert variants == [v.name for v in project.matrix.variants]
    runs = [s.get("run", "") for s in wf["jobs"]["image"]["steps"]]
    build = next(i for i, r in enumerate(runs) if r.startswith("dlbase bake ${{ matrix.variant }}"))
    verify = next(i for i, r in enumerate(runs) if r.startswith("dlbase verify"))
    push = next(i for i, r in enumerate(runs) if r.startswith("dlbase push"))
    assert build < verify < push
    static = [s.get("run", "") for s in wf["jobs"]["static"]["steps"]]
    assert "dlbase render --check" in static and "dlbase lint" in static
    text = (ROOT / "ci" / "github-actions.yml").read_text()
    for line in text.lower().splitlines():  # a password only ever comes from the secrets
        if "password" in line and not line.lstrip().startswith("#"):
            assert "${{ secrets.registry_password }}" in line, line


def test_workflow_builds_with_buildx_and_a_registry_cache_per_variant() -> None:
    project = Project.discover(ROOT)
    job = YAML(typ="safe").load((ROOT / "ci" / "github-actions.yml").read_text())["jobs"]["image"]
    steps = job["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    runs = [s.get("run", "") for s in steps]
    bake = next(i for i, r in enumerate(runs) if r.startswith("dlbase bake"))
    setup = uses.index("docker/setup-buildx-action")
    assert setup < bake
    # the builder shares the runner's network, so the build reaches the served wheelhouse
    assert "network=host" in steps[setup]["with"]["driver-opts"]
    assert "network.host" in steps[setup]["with"]["buildkitd-flags"]
    epoch = next(i for i, r in enumerate(runs) if "SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)" in r)
    assert epoch < bake and "GITHUB_ENV" in runs[epoch]
    cache = job["env"]["BUILDCACHE"]
    assert cache == f"${{{{ vars.REGISTRY }}}}/{project.matrix.repository}:buildcache-${{{{ matrix.variant }}}}"
    assert '--cache-from "type=registry,ref=$BUILDCACHE"' in runs[bake]
    assert '--cache-to "type=registry,ref=$BUILDCACHE,mode=max"' in runs[bake]
    assert "github.ref == 'refs/heads/main'" in runs[bake]  # pull requests only read the cache
    login = uses.index("docker/login-action")
    assert login < bake and steps[login]["if"] == "github.ref == 'refs/heads/main'"
    assert job["env"]["BUILDX_NO_DEFAULT_ATTESTATIONS"] == "1"  # dlbase attaches its own, signed


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


def test_the_workflows_dlbase_commands_parse_with_the_real_cli() -> None:
    """Every `dlbase VERB ...` the workflow runs is accepted by that verb's options (main's
    branch of each `${{ a && 'X' || '' }}` taken), so a renamed flag cannot slip through."""
    import shlex

    import click

    from dlbase.cli.app import app

    wf = YAML(typ="safe").load((ROOT / "ci" / "github-actions.yml").read_text())
    seen = []
    for job in wf["jobs"].values():
        for step in job["steps"]:
            run = step.get("run", "")
            if not run.startswith("dlbase "):
                continue
            run = re.sub(r"\$\{\{[^}]*&& '([^']*)' \|\| '' \}\}", r"\1", run)
            run = re.sub(r"\$\{\{[^}]*\}\}", "X", run)
            argv = shlex.split(run)[1:]
            cmd = app.commands[argv[0]]
            with click.Context(cmd) as ctx:
                cmd.parse_args(ctx, argv[1:])
            seen.append(argv[0])
    assert {"bake", "verify", "push", "render"} <= set(seen)
