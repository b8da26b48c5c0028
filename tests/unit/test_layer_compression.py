"""Layer compression as data: each wheel line's choice in images/matrix.yaml, validated
before anything is built; what BuildKit's exporter is asked for; which daemons can hold
zstd; the classic builder's gzip."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlbase.build import builder as builder_mod
from dlbase.core import layercompression
from dlbase.core.errors import ExitCode
from dlbase.define.project import Project
from dlbase.define.spec import BuildSpec
from dlbase.engine.buildkit import BuildKitOptions, buildx_argv

REPO = Path(__file__).resolve().parents[2]
MATRIX_REL = "images/matrix.yaml"
BLOCK = "compression:\n  default: zstd"


def test_committed_matrix_new_line_zstd_cuda_11_line_gzip() -> None:
    matrix = Project.discover(REPO).matrix
    by_line = {v.line: v.compression for v in matrix.variants}
    assert by_line["cu130"] == "zstd"  # the new line (torch 2.14, CUDA 13, Debian 13)
    assert by_line["cu124"] == "zstd" and by_line["cu126"] == "zstd"
    assert by_line["cu118"] == "gzip"  # old hosts: Docker 20.10 reads gzip only


def test_absent_block_means_gzip_everywhere(project_copy: Path, edit) -> None:
    path = project_copy / MATRIX_REL
    text = path.read_text(encoding="utf-8")
    start = text.index("compression:\n")
    end = text.index("# Base images.")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    assert {v.compression for v in Project.discover(project_copy).matrix.variants} == {"gzip"}


@pytest.mark.parametrize("old,new,needle", [
    (BLOCK, "compression:\n  default: brotli", "compression.default: unknown layer compression 'brotli'"),
    ("    cu118: gzip", "    cu118: lz4", "compression.lines.cu118: unknown layer compression 'lz4'"),
    ("    cu118: gzip", "    cuda11: gzip", "'cuda11' is not a wheel line name"),
    (BLOCK, "compression:\n  default: zstd\n  level: 19", "unknown key 'level' in compression"),
])
def test_unknown_compression_is_exit_2_naming_the_line(cli, project_copy: Path, edit, lineno_of,
                                                       old: str, new: str, needle: str) -> None:
    text = edit(project_copy / MATRIX_REL, old, new)
    for command in (("check",), ("build", "--json")):  # refused before anything is built
        res = cli(*command)
        assert res.code == ExitCode.INVALID_INPUT == 2, res.output
        assert needle in res.err or needle in res.out, res.output
        assert "Traceback" not in res.output
    assert f"{MATRIX_REL}:" in cli("check").err and str(lineno_of(text, new.splitlines()[-1].strip())) in cli("check").err


@pytest.mark.parametrize("name,attrs", [
    ("zstd", "oci-mediatypes=true,compression=zstd,force-compression=true,compression-level=3"),
    ("gzip", "oci-mediatypes=true,compression=gzip,force-compression=true"),
])
def test_exporter_attrs_pin_level_and_force(name: str, attrs: str) -> None:
    assert layercompression.exporter_attrs(name) == attrs
    opts = BuildKitOptions(context_dir="/c", dockerfile="D", metadata_file="/m", buildargs={}, labels={},
                           compression=name)
    argv = buildx_argv(opts)
    assert argv[argv.index("--output") + 1] == "type=image," + attrs


def test_exporter_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError):
        layercompression.exporter_attrs("lz4")


@pytest.mark.parametrize("version,store,reads", [
    ("26.1.5+dfsg1", True, True), ("23.0.0", True, True), ("20.10.24+dfsg1", True, False),
    ("20.10.24", None, False), ("26.1.5", False, False), ("26.1.5", None, None), (None, True, None),
    ("weird", True, None),
])
def test_which_daemons_hold_zstd(version, store, reads) -> None:
    assert layercompression.reads_zstd(version, store) is reads


def test_classic_builder_writes_gzip_and_says_so() -> None:
    project = Project.discover(REPO)
    spec = BuildSpec.of(project.compat, project.matrix.get("torch2.6-cu124-runtime-debian12"))
    said: list[str] = []
    assert builder_mod.layer_compression(spec, "classic", said.append) == "gzip"
    assert len(said) == 1 and "classic builder writes gzip only" in said[0] and "cu124" in said[0]
    said.clear()
    assert builder_mod.layer_compression(spec, "buildkit", said.append) == "zstd" and said == []


def test_bake_file_asks_each_target_for_its_lines_compression() -> None:
    text = (REPO / "ci" / "docker-bake.hcl").read_text(encoding="utf-8")
    project = Project.discover(REPO)
    for v in project.matrix.variants:
        block = text.split(f"# variant {v.name}\n", 1)[1].split("\n}\n", 1)[0]
        assert f'output = ["type=docker,{layercompression.exporter_attrs(v.compression)}"]' in block
