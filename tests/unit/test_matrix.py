"""images/matrix.yaml: loading, and every way a broken matrix is rejected.

Each rejection runs the real CLI (`dlbase check`) against a mutated copy of the project
and asserts exit code 2 and a message naming the file, the variant (or base/flavor), the
field and the line. Expected line numbers are computed from the mutated text, not taken
from the code under test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dlbase.define import matrix as matrix_mod
from dlbase.core.errors import ExitCode, MatrixError

REPO = Path(__file__).resolve().parents[2]
MATRIX_REL = "images/matrix.yaml"
V1 = "torch2.6-cu124-runtime-debian12"      # first variant in the committed matrix
V2 = "torch2.6-cu124-notebook-debian12"     # second variant
V1_BLOCK = f"""  - name: {V1}
    torch: "2.6.0"
    line: cu124
    flavor: runtime
    python: "3.11"
    base: debian12
"""


@pytest.fixture
def matrix_file(project_copy):
    return project_copy / MATRIX_REL


def assert_rejected(res, *parts: str) -> None:
    assert res.code == ExitCode.INVALID_INPUT == 2, res.output
    assert "Traceback" not in res.output
    for part in parts:
        assert part in res.err, f"{part!r} not in:\n{res.err}"


# ------------------------------------------------------------------------------ loading
def test_committed_matrix_loads_every_variant(raw_matrix):
    m = matrix_mod.load(REPO / MATRIX_REL, MATRIX_REL)
    assert [v.name for v in m.variants] == [v["name"] for v in raw_matrix["variants"]]
    assert m.default == raw_matrix["default"]
    assert m.default_variant.name == raw_matrix["default"]
    for v, raw in zip(m.variants, raw_matrix["variants"]):
        assert (v.torch, v.line, v.flavor.name, v.python, v.base.key) == (
            raw["torch"], raw["line"], raw["flavor"], raw["python"], raw["base"])
        # shared pins reach every variant, flavor pins only that flavor's variants
        for pkg, ver in raw_matrix["packages"].items():
            assert v.packages[pkg] == ver
        for pkg, ver in (raw_matrix["flavors"][raw["flavor"]]["packages"] or {}).items():
            assert v.packages[pkg] == ver
    devel = [v for v in m.variants if v.flavor.name == "devel"]
    runtime = [v for v in m.variants if v.flavor.name == "runtime"]
    assert devel and runtime
    assert all("ninja" in v.packages for v in devel)
    assert not any("ninja" in v.packages or "jupyterlab" in v.packages for v in runtime)


def test_variant_package_override_wins_only_for_that_variant(matrix_file, edit):
    edit(matrix_file, V1_BLOCK, V1_BLOCK + '    packages: {numpy: "2.1.3"}\n')
    m = matrix_mod.load(matrix_file, MATRIX_REL)
    assert m.get(V1).packages["numpy"] == "2.1.3"
    assert m.get(V2).packages["numpy"] != "2.1.3"
    assert m.get(V1).packages["albumentations"] == m.get(V2).packages["albumentations"]


def test_unknown_variant_name_is_an_error_naming_the_known_ones():
    m = matrix_mod.load(REPO / MATRIX_REL, MATRIX_REL)
    with pytest.raises(MatrixError) as exc:
        m.get("torch9.9-cu999-runtime-nowhere")
    assert exc.value.exit_code == 2
    assert V1 in (exc.value.hint or "")


def test_committed_matrix_passes_check(cli):
    assert cli("check").code == 0


# ---------------------------------------------------------------------------- rejections
def test_yaml_syntax_error_names_file_and_line(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, "repository: dlbase/pytorch\n", "repository: dlbase/pytorch\n  oops: [1\n")
    res = cli("check")
    assert_rejected(res, MATRIX_REL, "YAML syntax error")
    bad = lineno_of(text, "oops: [1")
    assert f"{MATRIX_REL}:{bad}" in res.err or f"{MATRIX_REL}:{bad + 1}" in res.err, res.err


def test_yaml_syntax_error_bad_indentation_points_at_the_line(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, "    flavor: notebook\n", "    flavor: notebook\n   stray: 1\n")
    res = cli("check")
    assert_rejected(res, MATRIX_REL, "YAML syntax error")
    assert f"{MATRIX_REL}:{lineno_of(text, 'stray: 1')}" in res.err


def test_unknown_top_level_key(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, "repository: dlbase/pytorch\n", "repository: dlbase/pytorch\nrepositry: x\n")
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'repositry:')}", "field 'repositry'", "unknown key")


def test_unknown_variant_key(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, V1_BLOCK, V1_BLOCK.replace("    base: debian12\n", "    base: debian12\n    flavour: devel\n"))
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'flavour: devel')}", f"variant '{V1}'",
                    "field 'flavour'", "unknown key")


def test_unknown_base_key(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, "    tag: 12-minbase\n", "    tag: 12-minbase\n    platform: arm64\n")
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'platform: arm64')}", "base 'debian12'",
                    "field 'platform'", "unknown key")


def test_unknown_flavor_key(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, "    compiler: true\n", "    compiler: true\n    compilers: gcc\n")
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'compilers: gcc')}", "flavor 'devel'",
                    "field 'compilers'", "unknown key")


def test_missing_variant_field(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, V1_BLOCK, V1_BLOCK.replace("    line: cu124\n", ""))
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, f'- name: {V1}')}", f"variant '{V1}'",
                    "field 'line'", "missing required field")


def test_missing_base_field(cli, matrix_file, edit):
    edit(matrix_file, "    tag: 12-minbase\n", "")
    res = cli("check")
    assert_rejected(res, MATRIX_REL, "base 'debian12'", "field 'tag'", "missing required field")


def test_missing_top_level_field(cli, matrix_file, edit):
    edit(matrix_file, "repository: dlbase/pytorch\n", "")
    assert_rejected(cli("check"), MATRIX_REL, "field 'repository'", "missing required field")


@pytest.mark.parametrize("bad", ['"2.6.x"', '"latest"', '"2.6.0+cu124"'])
def test_invalid_torch_version_string(cli, matrix_file, edit, lineno_of, bad):
    text = edit(matrix_file, V1_BLOCK, V1_BLOCK.replace('    torch: "2.6.0"', f"    torch: {bad}"))
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, f'torch: {bad}')}", f"variant '{V1}'", "field 'torch'",
                    bad.strip('"'), "not a valid version")


def test_unquoted_float_torch_version_must_be_quoted(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, V1_BLOCK, V1_BLOCK.replace('    torch: "2.6.0"', "    torch: 2.6"))
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'torch: 2.6')}", f"variant '{V1}'", "field 'torch'",
                    "quoted")


def test_unquoted_python_310_is_rejected_not_read_as_31(cli, matrix_file, edit, lineno_of):
    # YAML reads 3.10 as the float 3.1: the matrix must say "3.10".
    block = V1_BLOCK.replace("base: debian12", "base: cuda12.4-base-ubuntu22.04").replace('python: "3.11"', "python: 3.10")
    text = edit(matrix_file, V1_BLOCK, block)
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'python: 3.10')}", f"variant '{V1}'",
                    "field 'python'", "quoted")


def test_invalid_package_pin(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, 'numpy: "2.2.6"', 'numpy: "2.2.x"')
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'numpy:')}", "field 'numpy'", "2.2.x")


def test_invalid_augmentation_version(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, 'version: "2.0.8"', 'version: "2.0.x"')
    res = cli("check")
    assert res.code == ExitCode.INVALID_INPUT and "2.0.x" in res.err and "Traceback" not in res.err


def test_malformed_line_name(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, V1_BLOCK, V1_BLOCK.replace("line: cu124", "line: cuda12.4"))
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'line: cuda12.4')}", f"variant '{V1}'", "field 'line'")


def test_variant_name_must_be_usable_as_folder_and_tag(cli, matrix_file, edit):
    edit(matrix_file, f"  - name: {V2}\n", "  - name: Torch 2.6 Notebook\n")
    res = cli("check")
    assert_rejected(res, MATRIX_REL, "variant 'Torch 2.6 Notebook'", "field 'name'")


def test_duplicate_variant_name(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, f"  - name: {V2}\n", f"  - name: {V1}\n")
    res = cli("check")
    first, second = lineno_of(text, f"- name: {V1}", 1), lineno_of(text, f"- name: {V1}", 2)
    assert_rejected(res, f"{MATRIX_REL}:{second}", f"variant '{V1}'", "field 'name'", "duplicate",
                    f"line {first}")


def test_flavor_that_does_not_exist(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, V1_BLOCK, V1_BLOCK.replace("flavor: runtime", "flavor: slim"))
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'flavor: slim')}", f"variant '{V1}'", "field 'flavor'",
                    "'slim' does not exist", "runtime, devel, notebook")


def test_base_that_does_not_exist(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, V1_BLOCK, V1_BLOCK.replace("base: debian12", "base: debian99"))
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'base: debian99')}", f"variant '{V1}'", "field 'base'",
                    "'debian99'", "debian12")


def test_default_naming_no_variant(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, f"default: {V1}\n", "default: torch2.6-cu121-runtime-debian12\n")
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'default: torch2.6-cu121')}", "field 'default'",
                    "torch2.6-cu121-runtime-debian12")


@pytest.mark.parametrize("digest", ["sha256:abc", "sha256:" + "G" * 64, "md5:" + "a" * 64, "a" * 64])
def test_malformed_digest(cli, matrix_file, edit, lineno_of, digest):
    text = edit(matrix_file, "    digest: null\n", f"    digest: {digest}\n")
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, f'digest: {digest}')}", "base 'cuda11.8-base-ubuntu22.04'",
                    "field 'digest'", digest)


def test_well_formed_digest_is_accepted(cli, matrix_file, edit):
    edit(matrix_file, "    digest: null\n", f"    digest: sha256:{'0' * 64}\n")
    assert cli("check").code == 0


def test_base_source_must_be_known(cli, matrix_file, edit, lineno_of):
    text = edit(matrix_file, "    source: bootstrap\n", "    source: magic\n")
    res = cli("check")
    assert_rejected(res, f"{MATRIX_REL}:{lineno_of(text, 'source: magic')}", "base 'debian12'", "field 'source'")


def test_every_problem_is_reported_in_one_run(cli, matrix_file, edit, lineno_of):
    block = (V1_BLOCK.replace('torch: "2.6.0"', 'torch: "2.6.x"').replace("flavor: runtime", "flavor: slim")
             .replace("base: debian12", "base: debian99"))
    edit(matrix_file, V1_BLOCK, block)
    edit(matrix_file, "    tag: 12-minbase\n", "    tag: 12-minbase\n    platform: arm64\n")
    text = edit(matrix_file, f"  - name: {V2}\n", f"  - name: {V2}\n    colour: red\n")
    res = cli("check")
    assert_rejected(res)
    for needle, field in [("platform: arm64", "platform"), ('torch: "2.6.x"', "torch"),
                          ("flavor: slim", "flavor"), ("base: debian99", "base"), ("colour: red", "colour")]:
        assert f"{MATRIX_REL}:{lineno_of(text, needle)}" in res.err, (needle, res.err)
        assert f"field '{field}'" in res.err
    assert "4 more problem" in res.err


def test_json_error_output_for_a_broken_matrix(cli, matrix_file, edit):
    edit(matrix_file, V1_BLOCK, V1_BLOCK.replace("flavor: runtime", "flavor: slim"))
    res = cli("check", "--json")
    assert res.code == 2
    data = res.json()
    assert data["ok"] is False and data["exit_code"] == 2 and data["error"] == "MatrixError"
    assert MATRIX_REL in data["message"] and "flavor" in data["message"]


def test_rejection_through_python_dash_m_dlbase(project_copy, edit):
    """The installed entry point, in a fresh process: exit code and message reach the shell."""
    edit(project_copy / MATRIX_REL, V1_BLOCK, V1_BLOCK.replace("base: debian12", "base: debian99"))
    proc = subprocess.run([sys.executable, "-m", "dlbase", "check"], capture_output=True, text=True,
                          cwd=project_copy, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert MATRIX_REL in proc.stderr and f"variant '{V1}'" in proc.stderr and "field 'base'" in proc.stderr
