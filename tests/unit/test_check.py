"""`dlbase check`: the matrix and ad-hoc stacks against images/compat.yaml.

Expected versions come from reading compat.yaml/matrix.yaml as plain YAML, or from
facts the issue states (torch 2.6.0 pairs with torchvision 0.21.0 / torchaudio 2.6.0,
has no cu121 build, CUDA 12.x minor-version compatibility starts at driver 525).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlbase.define import compat as compat_mod
from dlbase.core.errors import MatrixError

REPO = Path(__file__).resolve().parents[2]
MATRIX_REL = "images/matrix.yaml"
COMPAT_REL = "images/compat.yaml"
COLUMNS = ["variant", "torch", "torchvision", "torchaudio", "CUDA line", "cuDNN", "Python", "min driver", "status"]
SEED = ["--torch", "2.6.0", "--torchvision", "0.17.0", "--torchaudio", "2.1.0"]


def table_rows(out: str) -> dict[str, list[str]]:
    """Rows of the rich table printed on stdout, keyed by the first cell."""
    rows = {}
    for line in out.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


def header(out: str) -> list[str]:
    for line in out.splitlines():
        if line.startswith("┃"):
            return [c.strip() for c in line.strip("┃").split("┃")]
    raise AssertionError(f"no table header in:\n{out}")


# ------------------------------------------------------------------ the committed matrix
def test_committed_matrix_passes_with_a_full_table(cli, raw_matrix, raw_compat):
    res = cli("check")
    assert res.code == 0, res.output
    assert header(res.out) == COLUMNS
    rows = table_rows(res.out)
    names = [v["name"] for v in raw_matrix["variants"]]
    assert set(rows) == set(names)
    for v in raw_matrix["variants"]:
        cells = dict(zip(COLUMNS, rows[v["name"]]))
        rel = raw_compat["torch"][v["torch"]]
        line = rel["lines"][v["line"]]
        assert cells["torch"] == v["torch"]
        assert cells["torchvision"] == rel["torchvision"]
        assert cells["torchaudio"] == (rel["torchaudio"] or "none")  # 2.14.1: no torchaudio pairs
        assert cells["CUDA line"] == f"{v['line']} ({line['cuda']})"
        assert cells["cuDNN"] == line["cudnn"]
        assert cells["Python"] == v["python"]
        assert raw_compat["cuda"][line["cuda"]]["min_driver"] in cells["min driver"]
        floor = raw_compat["minor_version_compat"][line["cuda"].split(".")[0]]["min_driver"]
        assert floor in cells["min driver"]
        assert cells["status"].startswith("ok")
    assert "incompatible" not in res.output


def test_unpinned_registry_bases_warn_but_do_not_fail(cli, raw_matrix):
    res = cli("check", "--json")
    assert res.code == 0
    data = res.json()
    assert data["ok"] is True
    by_name = {r["name"]: r for r in data["results"]}
    unpinned = [v["name"] for v in raw_matrix["variants"]
                if raw_matrix["bases"][v["base"]]["source"] == "registry"
                and not raw_matrix["bases"][v["base"]].get("digest")]
    assert unpinned, "the committed matrix has no unpinned registry base; this test needs one"
    for name in by_name:
        warnings = [f for f in by_name[name]["findings"] if f["severity"] == "warning"]
        if name in unpinned:
            assert by_name[name]["status"] == "ok (warnings)"
            assert any("not pinned by digest" in f["message"] for f in warnings)
        else:
            assert by_name[name]["status"] == "ok" and not by_name[name]["findings"]
    human = cli("check")
    assert human.code == 0
    assert human.err.count("warning:") == len(unpinned)
    assert "dlbase pin" in human.err


def test_pinning_a_base_removes_its_warning(cli, project_copy, edit):
    v = "torch2.6-cu124-runtime-ubuntu22.04"
    edit(project_copy / MATRIX_REL, "    tag: 12.4.1-base-ubuntu22.04\n    digest: null\n",
         f"    tag: 12.4.1-base-ubuntu22.04\n    digest: sha256:{'ab' * 32}\n")
    by_name = {r["name"]: r for r in cli("check", "--json").json()["results"]}
    assert by_name[v]["status"] == "ok" and by_name[v]["findings"] == []
    assert by_name["torch2.6-cu126-runtime-ubuntu22.04"]["status"] == "ok (warnings)"


def test_variant_option_selects_rows(cli):
    res = cli("check", "--variant", "torch2.6-cu118-devel-ubuntu22.04", "--json")
    assert res.code == 0
    assert [r["name"] for r in res.json()["results"]] == ["torch2.6-cu118-devel-ubuntu22.04"]
    res = cli("check", "--variant", "no-such-variant")
    assert res.code == 2 and "no-such-variant" in res.err


# ----------------------------------------------------------------------- ad-hoc stacks
def test_seed_torchvision_and_torchaudio_are_rejected_with_the_right_pair(cli):
    res = cli("check", *SEED)
    assert res.code == 2, res.output
    assert "0.21.0" in res.err and "torchaudio 2.6.0" in res.err
    assert "torchvision 0.17.0 does not go with torch 2.6.0" in res.err
    assert "torchaudio 2.1.0 does not go with torch 2.6.0" in res.err
    assert table_rows(res.out)["command line"][-1] == "incompatible"


def test_seed_versions_json(cli):
    res = cli("check", *SEED, "--json")
    assert res.code == 2
    data = res.json()
    assert data["ok"] is False
    (r,) = data["results"]
    assert r["status"] == "incompatible"
    fields = {f["field"]: f for f in r["findings"] if f["severity"] == "error"}
    assert set(fields) == {"torchvision", "torchaudio"}
    assert "0.21.0" in fields["torchvision"]["suggestion"] and "2.6.0" in fields["torchaudio"]["suggestion"]


def test_the_right_pair_passes(cli):
    assert cli("check", "--torch", "2.6.0", "--torchvision", "0.21.0", "--torchaudio", "2.6.0").code == 0


def test_cuda_121_has_no_torch_26_build(cli):
    res = cli("check", "--torch", "2.6.0", "--cuda", "12.1")
    assert res.code == 2, res.output
    assert "no CUDA 12.1 build" in res.err
    for line in ("cu118", "cu124", "cu126"):
        assert line in res.err
    assert "525" in res.err
    assert "minor-version compatibility" in res.err


def test_cuda_121_json_has_the_same_verdict(cli):
    res = cli("check", "--torch", "2.6.0", "--cuda", "12.1", "--json")
    assert res.code == 2  # --json must not turn a failure into exit 0
    (r,) = res.json()["results"]
    assert r["ok"] is False and r["status"] == "incompatible" and r["line"] is None
    assert [f["field"] for f in r["findings"]] == ["cuda"]
    assert "cu124" in r["findings"][0]["suggestion"]


@pytest.mark.parametrize("cuda,line", [("11.8", "cu118"), ("12.4", "cu124"), ("cu124", "cu124"),
                                       ("12.4.1", "cu124"), ("12.6", "cu126"), ("cuda12.4", "cu124")])
def test_published_cuda_lines_pass(cli, raw_compat, cuda, line):
    res = cli("check", "--torch", "2.6.0", "--cuda", cuda, "--json")
    assert res.code == 0, res.output
    (r,) = res.json()["results"]
    spec = raw_compat["torch"]["2.6.0"]["lines"][line]
    assert (r["status"], r["line"], r["cuda"], r["cudnn"]) == ("ok", line, spec["cuda"], spec["cudnn"])
    assert r["min_driver"] == raw_compat["cuda"][spec["cuda"]]["min_driver"]
    assert r["minor_version_compat_driver"] == raw_compat["minor_version_compat"][spec["cuda"][:2]]["min_driver"]


def test_no_cuda_option_means_the_pypi_default_line(cli, raw_compat):
    (r,) = cli("check", "--torch", "2.6.0", "--json").json()["results"]
    assert r["line"] == raw_compat["torch"]["2.6.0"]["pypi_default"] == "cu124"


def test_unsupported_python_names_the_supported_ones(cli, raw_compat):
    res = cli("check", "--torch", "2.6.0", "--python", "3.14")
    assert res.code == 2
    assert "Python 3.14" in res.err
    supported = raw_compat["torch"]["2.6.0"]["python"]
    assert ", ".join(supported) in res.err


def test_supported_python_passes(cli):
    assert cli("check", "--torch", "2.6.0", "--python", "3.11").code == 0


def test_unknown_torch_release(cli, raw_compat):
    res = cli("check", "--torch", "2.6.7")
    assert res.code == 2
    assert "2.6.7" in res.err and COMPAT_REL in res.err
    for known in raw_compat["torch"]:
        assert known in res.err


def test_nonsense_cuda_value(cli):
    res = cli("check", "--torch", "2.6.0", "--cuda", "twelve")
    assert res.code == 2 and "twelve" in res.err


def test_stack_options_need_torch(cli):
    res = cli("check", "--cuda", "12.4")
    assert res.code == 2 and "--torch" in res.output


def test_json_and_table_agree(cli):
    for args in ([], SEED, ["--torch", "2.6.0", "--cuda", "12.1"], ["--torch", "2.6.0", "--cuda", "11.8"]):
        human, js = cli("check", *args), cli("check", *args, "--json")
        assert human.code == js.code
        data = js.json()
        statuses = {r["name"]: r["status"] for r in data["results"]}
        assert statuses == {name: cells[-1] for name, cells in table_rows(human.out).items()}
        assert data["ok"] == (human.code == 0)


# ----------------------------------------------------------------- variant-level findings
def _variant_status(cli, name):
    res = cli("check", "--json")
    assert res.code == 2, res.output
    by_name = {r["name"]: r for r in res.json()["results"]}
    assert by_name[name]["status"] == "incompatible"
    others = [r for n, r in by_name.items() if n != name]
    assert all(r["ok"] for r in others)
    return [f for f in by_name[name]["findings"] if f["severity"] == "error"]


def test_variant_python_differs_from_base_python(cli, project_copy, edit):
    v = "torch2.6-cu124-runtime-ubuntu22.04"
    edit(project_copy / MATRIX_REL, f'  - name: {v}\n    torch: "2.6.0"\n    line: cu124\n    flavor: runtime\n'
         '    python: "3.10"', f'  - name: {v}\n    torch: "2.6.0"\n    line: cu124\n    flavor: runtime\n'
         '    python: "3.11"')
    errs = _variant_status(cli, v)
    assert len(errs) == 1 and errs[0]["field"] == "python"
    assert "3.10" in errs[0]["message"] and "3.11" in errs[0]["message"]
    human = cli("check")
    assert human.code == 2 and v in human.err and "incompatible" in table_rows(human.out)[v][-1]


def test_devel_flavor_on_a_base_without_toolkit(cli, project_copy, edit):
    v = "torch2.6-cu124-devel-ubuntu22.04"
    edit(project_copy / MATRIX_REL, "    flavor: devel\n    python: \"3.10\"\n    base: cuda12.4-devel-ubuntu22.04",
         "    flavor: devel\n    python: \"3.10\"\n    base: cuda12.4-base-ubuntu22.04")
    errs = _variant_status(cli, v)
    assert [e["field"] for e in errs] == ["base"]
    assert "compiler" in errs[0]["message"] and "toolkit" in errs[0]["message"]


def test_toolkit_does_not_match_the_wheel_line(cli, project_copy, edit):
    v = "torch2.6-cu124-devel-ubuntu22.04"
    edit(project_copy / MATRIX_REL, "    base: cuda12.4-devel-ubuntu22.04", "    base: cuda12.6-devel-ubuntu22.04")
    errs = _variant_status(cli, v)
    assert [e["field"] for e in errs] == ["base"]
    assert "12.6" in errs[0]["message"] and "12.4" in errs[0]["message"]


def test_variant_on_a_line_the_release_does_not_publish(cli, project_copy, edit):
    old, v = "torch2.6-cu118-runtime-ubuntu22.04", "torch2.6-cu121-runtime-ubuntu22.04"
    edit(project_copy / MATRIX_REL, f'  - name: {old}\n    torch: "2.6.0"\n    line: cu118',
         f'  - name: {v}\n    torch: "2.6.0"\n    line: cu121')
    errs = _variant_status(cli, v)
    assert errs[0]["field"] == "line" and "cu121" in errs[0]["message"]


# ----------------------------------------------------------------------- compat.yaml
def _load_compat(path: Path):
    return compat_mod.load(path, COMPAT_REL)


def test_committed_compat_loads(raw_compat):
    c = _load_compat(REPO / COMPAT_REL)
    assert set(c.releases) == set(raw_compat["torch"])
    r = c.release("2.6.0")
    assert (r.torchvision, r.torchaudio, r.pypi_default) == ("0.21.0", "2.6.0", "cu124")
    assert set(r.lines) == {"cu118", "cu124", "cu126"}  # no cu121 build of 2.6.0


def test_compat_pypi_default_must_be_one_of_the_lines(project_copy, edit, lineno_of):
    path = project_copy / COMPAT_REL
    text = edit(path, "    pypi_default: cu124     # there is no cu121", "    pypi_default: cu121     # there is no cu121")
    with pytest.raises(MatrixError) as exc:
        _load_compat(path)
    e = exc.value
    assert e.exit_code == 2 and e.field == "pypi_default" and "2.6.0" in e.message and "cu121" in e.message
    assert e.lineno == lineno_of(text, "pypi_default: cu121     # there is no cu121")
    assert e.message.startswith(f"{COMPAT_REL}:{e.lineno}")


@pytest.mark.parametrize("field,old,new", [
    ("torchvision", 'torchvision: "0.21.0"', 'torchvision: "0.21.x"'),
    ("torchaudio", 'torchaudio: "2.6.0"  ', 'torchaudio: "two"  '),
    ("cudnn", 'cu126: {cuda: "12.6", cudnn: "9.5.1.17", nccl: "2.21.5"', 'cu126: {cuda: "12.6", cudnn: "9.x", nccl: "2.21.5"'),
])
def test_compat_bad_version(project_copy, edit, field, old, new):
    path = project_copy / COMPAT_REL
    edit(path, old, new)
    with pytest.raises(MatrixError) as exc:
        _load_compat(path)
    assert exc.value.field == field and COMPAT_REL in exc.value.message and exc.value.lineno is not None


def test_compat_line_needs_a_known_cuda_and_index(project_copy, edit):
    path = project_copy / COMPAT_REL
    edit(path, '  "12.6": {min_driver: "560.28.03"}\n', "")
    with pytest.raises(MatrixError) as exc:
        _load_compat(path)
    assert exc.value.field == "cuda" and "12.6" in exc.value.message


def test_broken_compat_fails_check_through_the_cli(cli, project_copy, edit):
    edit(project_copy / COMPAT_REL, 'torchvision: "0.21.0"', 'torchvision: "0.21.x"')
    res = cli("check")
    assert res.code == 2 and COMPAT_REL in res.err and "0.21.x" in res.err and "Traceback" not in res.output


@pytest.mark.parametrize("text,want", [("12.4", "12.4"), ("12.4.1", "12.4"), ("cu124", "12.4"), ("cu118", "11.8"),
                                       ("CUDA12.6", "12.6"), (" 11.8 ", "11.8")])
def test_normalise_cuda(text, want):
    assert compat_mod.normalise_cuda(text) == want


@pytest.mark.parametrize("text", ["12", "twelve", "cu12", "12.x"])
def test_normalise_cuda_rejects(text):
    with pytest.raises(ValueError):
        compat_mod.normalise_cuda(text)


def test_minor_floor_strings_are_real_driver_versions(raw_compat):
    for entry in raw_compat["minor_version_compat"].values():
        assert re.fullmatch(r"\d{3}\.\d+(\.\d+)?", entry["min_driver"])
        assert re.fullmatch(r"cuda>=\d+\.0", entry["require_cuda"])


def test_compat_line_missing_a_field_is_an_error_not_a_traceback(cli, project_copy, edit, lineno_of):
    path = project_copy / COMPAT_REL
    old = 'cu126: {cuda: "12.6", cudnn: "9.5.1.17", nccl: "2.21.5", triton: "3.2.0"}'
    text = edit(path, old, 'cu126: {cuda: "12.6", nccl: "2.21.5", triton: "3.2.0"}')
    with pytest.raises(MatrixError) as exc:
        _load_compat(path)
    assert exc.value.field == "cudnn" and "2.6.0" in exc.value.message
    assert exc.value.lineno == lineno_of(text, 'cu126: {cuda: "12.6", nccl')
    res = cli("check")
    assert res.code == 2 and "Traceback" not in res.output and COMPAT_REL in res.err


def test_compat_malformed_section_is_an_error_not_a_traceback(cli, project_copy, edit):
    edit(project_copy / COMPAT_REL, '"12.6": {min_driver: "560.28.03"}', '"12.6": {min_drive: "560.28.03"}')
    res = cli("check")
    assert res.code == 2 and "Traceback" not in res.output
    assert COMPAT_REL in res.err and "min_driver" in res.err
