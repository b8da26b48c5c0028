"""What a second torch line needed from the generic code: a Debian 13 base named by its
suite, releases no torchaudio pairs with, and image facts that a release of another CUDA
family leaves unchanged."""

from __future__ import annotations

import json

from dlbase.build import base as base_mod
from dlbase.core.errors import ExitCode
from dlbase.core.project import Project
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
