"""The bake file as buildx itself reads it (`docker buildx bake --print`, no daemon, no
build), compared with the matrix; and `dlbase bake`'s overrides as bake applies them.

Expected values come from the matrix, the renderer and the builder (the homes of those
facts), never from strings written here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from dlbase.core import layercompression
from dlbase.build import bake as bake_mod
from dlbase.build import inputs as inputs_mod
from dlbase.core.errors import ExitCode, InvalidInput
from dlbase.define.project import Project
from dlbase.define import bakefile, render
from dlbase.define import lock as lock_mod
from dlbase.define.spec import BuildSpec

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0,
    reason="needs `docker buildx` (its --print reads the file without a daemon)")


@pytest.fixture(scope="module")
def project() -> Project:
    return Project.discover(ROOT)


@pytest.fixture(scope="module")
def printed(project: Project) -> dict:
    return bake_mod.print_definition(project, ["all"])


def test_print_has_one_target_per_variant_as_rendered(project: Project, printed: dict) -> None:
    moving = {row["variant"]: row["moving"] for row in render.tag_rows(project, render.specs_of(project))}
    targets = printed["target"]
    assert sorted(targets) == sorted(bakefile.target_name(v.name) for v in project.matrix.variants)
    for v in project.matrix.variants:
        t = targets[bakefile.target_name(v.name)]
        assert t["context"] == "."
        assert t["dockerfile"] == f"images/{v.name}/Dockerfile"
        assert (ROOT / t["dockerfile"]).is_file()
        assert t["tags"] == [f"{project.matrix.repository}:{moving[v.name]}"]  # REGISTRY empty
        # the file's own args; the build-time label args are `dlbase bake`'s (one home: builder)
        assert t["args"] == {"WHEELHOUSE": "", "SOURCE_DATE_EPOCH": ""}
        assert "labels" not in t  # labels come from the Dockerfile's LABEL step
        assert t["output"] == ["type=docker," + layercompression.exporter_attrs(v.compression)]
        assert sorted(t["attest"]) == ["type=provenance,disabled=true", "type=sbom,disabled=true"]


def test_groups_resolve_as_the_template_defines_them(project: Project) -> None:
    default = bake_mod.print_definition(project, [])
    assert list(default["target"]) == [bakefile.target_name(project.matrix.default)]
    assert default["group"]["default"]["targets"] == [bakefile.target_name(project.matrix.default)]
    assert bake_mod.resolve(project, []) == [project.matrix.default]
    assert bake_mod.resolve(project, ["all"]) == [v.name for v in project.matrix.variants]
    some = [v.name for v in project.matrix.variants][-2:]
    assert bake_mod.resolve(project, list(reversed(some))) == some  # variant names, matrix order


def test_the_environment_sets_the_variables(project: Project) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "REGISTRY": "reg.example:5000/"}
    name = bakefile.target_name(project.matrix.default)
    res = subprocess.run(["docker", "buildx", "bake", "-f", bakefile.BAKE_FILE, "--print", name], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60, check=True)
    t = json.loads(res.stdout)["target"][name]
    assert t["args"]["SOURCE_DATE_EPOCH"] == "1700000000"
    assert all(tag.startswith("reg.example:5000/") for tag in t["tags"])


def test_dlbase_bakes_overrides_reach_the_target(project: Project) -> None:
    spec = BuildSpec.of(project.compat, project.matrix.default_variant)
    lock_hash = lock_mod.lock_hash(project.variant_dir(spec.name) / "requirements.lock")
    made = inputs_mod.derive(project, spec, lock_hash=lock_hash, base_ref=spec.variant.base.tag_ref,
                             base_digest="sha256:" + "a" * 64)
    target = bake_mod.Target(bakefile.target_name(spec.name), spec, lock_hash,
                             buildargs=made.label_args, wheelhouse_url="http://127.0.0.1:38211/")
    sets = bake_mod.overrides(target, "run1", extra_labels={"dlbase.test-session": "x"},
                              cache_from=["type=registry,ref=r.example/c:buildcache-{variant}"],
                              cache_to=["type=registry,ref=r.example/c:buildcache-{variant},mode=max"], nocache=True)
    extra = [item for s in sets for item in ("--set", s)]
    t = bake_mod.print_definition(project, [target.name], extra)["target"][target.name]
    assert t["tags"] == [target.staging("run1")]
    assert t["args"] == {"WHEELHOUSE": "http://127.0.0.1:38211/", "SOURCE_DATE_EPOCH": "",
                         **made.label_args}
    assert set(made.label_args) == set(inputs_mod.LABEL_ARGS.values())
    assert t["labels"] == {"dlbase.test-session": "x", layercompression.LABEL: spec.variant.compression}
    assert t["cache-from"] == [f"type=registry,ref=r.example/c:buildcache-{spec.name}"]
    assert t["cache-to"] == [f"type=registry,ref=r.example/c:buildcache-{spec.name},mode=max"]
    assert t["no-cache"] is True


def test_the_host_network_file_names_exactly_the_targets(project: Project) -> None:
    specs = render.specs_of(project)[:2]
    targets = [bake_mod.Target(bakefile.target_name(s.name), s, "h") for s in specs]
    doc = YAML(typ="safe").load(bake_mod.host_network(targets))
    assert doc["services"] == {t.name: {"build": {"network": "host"}} for t in targets}


def test_target_names_are_valid_and_one_to_one() -> None:
    assert bakefile.target_name("torch2.6-cu124-runtime-ubuntu22.04") == "torch2_6-cu124-runtime-ubuntu22_04"
    with pytest.raises(InvalidInput):
        bakefile.variant_targets(["a.b", "a_b"])
    with pytest.raises(InvalidInput):
        bakefile.variant_targets(["all"])
    with pytest.raises(InvalidInput):
        bakefile.target_name("a b")


def test_failing_step_is_the_last_step_before_the_error() -> None:
    log = ["#6 [x 1/2] FROM base", "#7 [x 2/2] RUN false", "#7 ERROR: process did not complete",
           "ERROR: failed to solve: process \"/bin/sh -c false\"", "#8 [x 3/3] RUN later"]
    assert bake_mod.failing_step(log) == "[x 2/2] RUN false"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlbase", "bake", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env or os.environ.copy())


def test_an_unknown_target_is_invalid_input_in_one_json_document() -> None:
    res = _cli("no-such-target", "--json")
    assert res.returncode == ExitCode.INVALID_INPUT, res.stderr
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and "no-such-target" in doc["message"] and doc["hint"]
    assert "Traceback" not in res.stderr


def test_without_buildx_bake_says_what_is_missing(tmp_path: Path) -> None:
    python_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{tmp_path}:{python_dir}"}  # a PATH without docker
    res = _cli("--json", env=env)
    assert res.returncode == ExitCode.MISSING, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert "buildx" in doc["message"] and "setup.sh" in doc["hint"]
