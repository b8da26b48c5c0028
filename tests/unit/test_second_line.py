"""What a second torch line needed from the generic code: a Debian 13 base named by its
suite, releases no torchaudio pairs with, and image facts that a release of another CUDA
family leaves unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from dlbase.build import base as base_mod
from dlbase.core.errors import ExitCode
from dlbase.define.project import Project
from dlbase.define import compat as compat_mod
from dlbase.define.spec import BuildSpec

DEFAULT = "torch2.6-cu124-runtime-debian12"
NEW = "torch2.14-cu130-runtime-debian13"


def test_a_bootstrap_base_names_its_suite_and_its_label_says_which_debian():
    project = Project.discover()
    assert project.matrix.bases["debian13"].suite == "trixie"
    assert project.matrix.bases["debian12"].suite is None  # bookworm, the default suite
    assert base_mod.base_label("trixie") == "debian13-minbase"
    assert base_mod.base_label(base_mod.DEFAULT_SUITE) == base_mod.BASE_LABEL_VALUE == "debian12-minbase"


def test_a_suite_on_a_registry_base_is_refused(project_copy, cli, edit):
    matrix = project_copy / "images" / "matrix.yaml"
    edit(matrix, "    tag: 11.8.0-base-ubuntu22.04\n", "    tag: 11.8.0-base-ubuntu22.04\n    suite: jammy\n")
    res = cli("check")
    assert res.code == ExitCode.INVALID_INPUT and "only a bootstrap base has one" in res.err


def test_base_bootstrap_refuses_a_base_that_is_not_bootstrapped(cli):
    res = cli("base", "bootstrap", "--base", "cuda12.4-base-ubuntu22.04")
    assert res.code == ExitCode.INVALID_INPUT
    assert "bootstrap bases: debian12, debian13" in res.err


def test_a_release_without_torchaudio_loads_and_checks():
    compat = Project.discover().compat
    assert compat.release("2.14.1").torchaudio is None
    res = compat_mod.check_stack(compat, torch="2.14.1")
    assert res.ok and res.torchaudio is None and res.line == "cu130"


def test_image_facts_list_only_pairs_of_the_images_cuda_family():
    """A CUDA 13 release joining the table must not change a CUDA 12 image's image.json."""
    project = Project.discover()
    old = BuildSpec.of(project.compat, project.matrix.get(DEFAULT)).image_info(project.compat)
    new = BuildSpec.of(project.compat, project.matrix.get(NEW)).image_info(project.compat)
    assert "2.14.1" not in {p["torch"] for p in old["compatible_pairs"]}
    assert [p["torch"] for p in new["compatible_pairs"]] == ["2.14.1"]
    committed = json.loads((project.variant_dir(DEFAULT) / "image.json").read_text())
    assert committed["compatible_pairs"] == old["compatible_pairs"]


def test_base_bootstrap_all_and_base_together_is_refused(cli):
    res = cli("base", "bootstrap", "--all", "--base", "debian13")
    assert res.code == ExitCode.INVALID_INPUT
    assert "--all and --base" in res.err and "Traceback" not in res.err


# ------------------------------------------------------------------ the augmentation choice

CHOOSE_X = ("    flavor: runtime\n    python: \"3.13\"\n    base: debian13\n",
            "    flavor: runtime\n    python: \"3.13\"\n    base: debian13\n    augmentation: albumentationsx\n")


def test_a_variant_that_chooses_albumentationsx_ships_it_instead_of_albumentations(project_copy, edit):
    edit(project_copy / "images" / "matrix.yaml", *CHOOSE_X)
    project = Project.discover(project_copy)
    chosen, default = project.matrix.get(NEW), project.matrix.get(DEFAULT)
    assert chosen.packages["albumentationsx"] == "2.5.1" and "albumentations" not in chosen.packages
    assert default.packages["albumentations"] == "2.0.8" and "albumentationsx" not in default.packages
    assert BuildSpec.of(project.compat, chosen).versions()["albumentations"] == "2.5.1"  # the module's version


def test_albumentationsx_telemetry_is_off_in_its_image_only(project_copy, edit):
    """The env of the chosen library goes into its Dockerfile's ENV; a variant on the MIT
    library (every committed one) renders none of it, so their Dockerfiles stay as they are."""
    from dlbase.define import render

    edit(project_copy / "images" / "matrix.yaml", *CHOOSE_X)
    project = Project.discover(project_copy)
    env = render.environment(project.templates_dir)
    text = render.dockerfile(project, BuildSpec.of(project.compat, project.matrix.get(NEW)), env)
    env_block = text.split("ENV ", 1)[1].split("\n\n", 1)[0]
    assert "    ALBUMENTATIONS_NO_TELEMETRY=1 \\\n" in env_block and "    ALBUMENTATIONS_OFFLINE=1 \\\n" in env_block
    assert "NO_ALBUMENTATIONS_UPDATE=1" in env_block
    plain = render.dockerfile(project, BuildSpec.of(project.compat, project.matrix.get(DEFAULT)), env)
    assert "TELEMETRY" not in plain
    assert plain == (Path(project.variant_dir(DEFAULT)) / "Dockerfile").read_text()


def test_check_warns_naming_agpl_where_albumentationsx_is_chosen(project_copy, edit, cli):
    edit(project_copy / "images" / "matrix.yaml", *CHOOSE_X)
    (project_copy / "images" / NEW / "requirements.lock").unlink()  # the pins speak until it is re-locked
    res = cli("check", "--json")
    body = json.loads(res.out)  # one JSON document
    [entry] = [v for v in body["results"] if v["name"] == NEW]
    messages = [f["message"] for f in entry["findings"]]
    assert f"{NEW} ships albumentationsx, licensed AGPL-3.0-only" in " ".join(messages), messages
    assert not any("installs both" in m for m in messages)  # the choice replaced albumentations


def test_an_unknown_augmentation_is_refused(project_copy, edit, cli):
    edit(project_copy / "images" / "matrix.yaml", CHOOSE_X[0],
         CHOOSE_X[0] + "    augmentation: kornia\n")
    res = cli("check")
    assert res.code == ExitCode.INVALID_INPUT
    assert "augmentation 'kornia' is not under 'augmentations'" in res.err and "Traceback" not in res.err
