"""`dlbase check` on a release: the first release with a CUDA major, pairs the table does not
make, AGPL packages named with their licence, and (--wheels) the table against the wheels
served from a fake index of real metadata files."""

from __future__ import annotations

import re

from dlbase.core.errors import ExitCode
from dlbase.define import compat as compat_mod

from .test_compat_add import fake_index

NEW = "torch2.14-cu130-runtime-debian13"
DEFAULT = "torch2.6-cu124-runtime-debian12"


def test_cuda13_for_2_6_names_the_first_release_that_has_one(cli):
    res = cli("check", "--torch", "2.6.0", "--cuda", "13.0")
    assert res.code == ExitCode.INVALID_INPUT
    assert "torch 2.6.0 has no CUDA 13.0 build" in res.err
    assert "first release in images/compat.yaml with a CUDA 13.0 build is torch 2.14.1 (cu130" in res.err
    assert "580.65.06" in res.err


def test_a_pin_the_table_does_not_pair_fails_even_when_an_index_would_resolve_it():
    from dlbase.define.project import Project

    project = Project.discover()
    found = compat_mod.pair_findings(project.compat, "2.14.1", {"torch": "2.14.1", "torchvision": "0.21.0"}, "x")
    assert [f.field for f in found] == ["torchvision"]
    assert "torchvision 0.21.0 pairs with torch 2.6.0" in found[0].message
    assert compat_mod.pair_findings(project.compat, "2.14.1", {"torchvision": "0.29.2"}, "x") == []
    audio = compat_mod.pair_findings(project.compat, "2.14.1", {"torchaudio": "2.11.1"}, "x")
    assert audio and "no torchaudio (none pairs with torch 2.14.1)" in audio[0].suggestion


def test_variant_pinning_an_unpaired_torchvision_fails_check(project_copy, cli, edit):
    matrix = project_copy / "images" / "matrix.yaml"
    edit(matrix, f"  - name: {NEW}\n    torch: \"2.14.1\"\n",
         f"  - name: {NEW}\n    packages: {{torchvision: \"0.29.1\"}}\n    torch: \"2.14.1\"\n")
    res = cli("check", "--variant", NEW)
    assert res.code == ExitCode.INVALID_INPUT, res.output
    assert f"variant {NEW} pins torchvision 0.29.1, which the table does not pair with torch 2.14.1" in res.err


def test_an_agpl_package_is_a_warning_naming_its_licence(project_copy, cli):
    matrix = project_copy / "images" / "matrix.yaml"
    text = matrix.read_text()
    block = re.search(rf"  - name: {NEW}\n(    .*\n)+", text).group(0)
    extra = block.replace(NEW, "torch2.14-cu130-runtime-x-debian13").replace(
        "    base: debian13\n", "    base: debian13\n    packages: {albumentationsx: \"2.5.1\"}\n")
    matrix.write_text(text + extra)
    res = cli("check", "--variant", "torch2.14-cu130-runtime-x-debian13")
    assert "ships albumentationsx, licensed AGPL-3.0-only" in res.err
    assert "installs both albumentations and albumentationsx" in res.err  # the shared pin is still there
    assert res.code == ExitCode.INVALID_INPUT
    assert "AGPL" not in cli("check", "--variant", DEFAULT).output, "the default ships MIT albumentations only"


def _point_pypi_at(project_copy, url: str) -> None:
    path = project_copy / "images" / "compat.yaml"
    path.write_text(path.read_text().replace("pypi: https://pypi.org/simple", f"pypi: {url}"))


def test_wheels_agree_with_the_committed_rows(project_copy, cli):
    with fake_index(pep658=True) as (url, _):
        _point_pypi_at(project_copy, url)
        res = cli("check", "--wheels", "--variant", NEW, "--variant", DEFAULT)
    assert res.code == 0, res.output


def test_a_hand_written_fact_that_disagrees_with_the_wheel_fails(project_copy, cli):
    path = project_copy / "images" / "compat.yaml"
    path.write_text(path.read_text().replace('cudnn: "9.24.0.43"', 'cudnn: "9.20.0.48"'))
    with fake_index(pep658=True) as (url, _):
        _point_pypi_at(project_copy, url)
        res = cli("check", "--wheels", "--variant", NEW)
    assert res.code == ExitCode.INVALID_INPUT, res.output
    assert "torch 2.14.1 says cudnn '9.20.0.48', the wheel says '9.24.0.43'" in res.err
    assert "nvidia-cudnn-cu13==9.24.0.43" in res.err


def test_an_unreachable_index_is_said_not_failed(project_copy, cli):
    _point_pypi_at(project_copy, "http://127.0.0.1:9/simple")
    res = cli("check", "--wheels", "--variant", NEW)
    assert res.code == 0, res.output
    assert "torch 2.14.1 not compared with its wheels" in res.err and "cannot be reached" in res.err
