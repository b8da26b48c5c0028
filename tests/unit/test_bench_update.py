"""`dlbase bench update`'s arithmetic and report (the builds themselves run in `make bench`)."""

from __future__ import annotations

import json
from pathlib import Path

from dlbase.bench import update as bu


def bench(single: list[float], layered: list[float], naive: list[float]) -> bu.UpdateBench:
    designs = {
        "single": bu.DesignResult(design="single", image_bytes=6_000_000_000, cold_seconds=single[0],
                                  cold_samples=single, warm_seconds=0.7),
        "layered": bu.DesignResult(design="layered", image_bytes=6_000_000_000, cold_seconds=layered[0],
                                   cold_samples=layered, warm_seconds=1.2, update_builder_bytes=30_000_000),
    }
    return bu.UpdateBench(variant="v", notebook="nb", changed="pyyaml 6.0.3 -> 6.0.2", designs=designs,
                          naive_samples=naive)


def test_cold_ratios_are_of_medians_so_one_noisy_build_does_not_decide():
    b = bench(single=[80.0, 82.0, 150.0], layered=[70.0, 72.0, 71.0], naive=[140.0, 120.0])
    assert b.designs["single"].cold_median == 82.0 and b.designs["layered"].cold_median == 71.0
    assert b.cold_layered_over_single == round(71.0 / 82.0, 3)
    assert b.cold_layered_over_naive == round(71.0 / 130.0, 3)
    assert b.designs["layered"].ratios["warm_over_cold"] == round(1.2 / 71.0, 4)


def test_without_naive_builds_the_stretch_ratio_is_absent_not_zero():
    b = bench(single=[80.0], layered=[70.0], naive=[])
    assert b.naive_median is None and b.cold_layered_over_naive is None
    assert b.to_dict()["cold_layered_over_naive"] is None


def test_write_puts_every_sample_in_the_json_the_table_and_the_chart(tmp_path: Path):
    b = bench(single=[80.0, 82.0], layered=[70.0, 72.0], naive=[140.0])
    jpath, mpath, table = bu.write(b, tmp_path)
    data = json.loads(jpath.read_text())
    assert data["designs"]["layered"]["cold_samples"] == [70.0, 72.0] and data["naive_samples"] == [140.0]
    assert data["cold_layered_over_single"] == b.cold_layered_over_single
    assert "70.0, 72.0" in table and "80.0, 82.0" in table and "140.0 s (140.0)" in table
    assert f"here {b.cold_layered_over_single}" in table and "<= 0.7" in table
    assert mpath.read_text().endswith(table)
    svg = (tmp_path / jpath.name.replace(".json", ".svg")).read_text()
    assert "naive 140.0 s" in svg and "layered 71.0 s" in svg and svg.count("<rect") == 3 * 2 + 3


def test_cold_rounds_rotate_the_order_and_remove_each_image(monkeypatch, tmp_path: Path):
    """The rotation and clean-up, with the builds replaced (a unit test of the loop only)."""
    order: list[str] = []
    removed: list[str] = []

    class FakeBuilder:
        def __init__(self, copy, engine, design, labels, created, say, builder):
            assert builder == "buildkit"  # the run's one builder reaches every design's builds
            self.design, self.created = design, created
            self.copy = copy

        def render(self):
            pass

        def fill(self, spec):
            return tmp_path

        def build(self, spec, *, nocache):
            assert nocache
            order.append(self.design)
            self.created.append(f"img-{self.design}-{len(order)}")
            return self.created[-1], float(len(order))

    def fake_naive(copy, spec, engine, ctx, labels, builder):
        assert builder == "buildkit"  # and the naive Dockerfile's
        order.append("naive")
        return f"img-naive-{len(order)}", float(len(order))

    class FakeEngine:
        def remove_image(self, ref, force=False):
            removed.append(ref)

    monkeypatch.setattr(bu, "_Builder", FakeBuilder)
    monkeypatch.setattr(bu, "copy_project", lambda project, dest: dest)
    monkeypatch.setattr(bu, "naive_build", fake_naive)
    spec = type("Spec", (), {"name": "v"})()
    samples = bu.cold_builds(object(), spec, FakeEngine(), tmp_path, {}, ("layered", "single"), 3, lambda m: None,
                             builder="buildkit")
    assert order == ["layered", "single", "naive", "single", "naive", "layered", "naive", "layered", "single"]
    assert samples == {"layered": [1.0, 6.0, 8.0], "single": [2.0, 4.0, 9.0], "naive": [3.0, 5.0, 7.0]}
    assert len(removed) == 9 and len(set(removed)) == 9
    assert bu.cold_builds(object(), object(), FakeEngine(), tmp_path, {}, ("layered",), 0, print) == {}


# --------------------------------------------------------------------------- before any build

import re  # noqa: E402

import pytest  # noqa: E402

from dlbase.core.errors import ExitCode, InvalidInput  # noqa: E402
from dlbase.define.project import Project  # noqa: E402
from dlbase.define.spec import BuildSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RUNTIME = "torch2.6-cu124-runtime-debian12"
NOTEBOOK = "torch2.6-cu124-notebook-debian12"
NO_DAEMON = "tcp://127.0.0.1:1"  # a command that reached the daemon would exit 6


def spec_of(project: Project, name: str) -> BuildSpec:
    return BuildSpec.of(project.compat, project.matrix.get(name))


def test_the_default_notebook_is_the_matrix_notebook_flavor_on_the_same_stack():
    project = Project.discover(root=REPO)
    assert bu.notebook_for(project, spec_of(project, RUNTIME), None) == NOTEBOOK
    assert bu.notebook_for(project, spec_of(project, RUNTIME), NOTEBOOK) == NOTEBOOK
    # cu124 on Ubuntu has a devel flavor on top (it extends runtime) but no notebook: not picked.
    with pytest.raises(InvalidInput, match="no notebook variant"):
        bu.notebook_for(project, spec_of(project, "torch2.6-cu124-runtime-ubuntu22.04"), None)


@pytest.mark.parametrize("notebook, says", [
    (RUNTIME, "is VARIANT itself"),
    ("torch2.6-cu124-devel-ubuntu22.04", "is not a notebook flavor"),
    ("torch2.6-cu126-notebook-ubuntu22.04", "another base, torch, wheel line or Python"),
])
def test_a_notebook_that_is_not_one_of_variant_is_refused_before_the_daemon(cli, monkeypatch, notebook, says):
    monkeypatch.setenv("DOCKER_HOST", NO_DAEMON)
    res = cli("bench", "update", RUNTIME, "--notebook", notebook, "--json")
    assert res.code == ExitCode.INVALID_INPUT, res.output
    doc = json.loads(res.out)
    assert says in doc["message"] and NOTEBOOK in doc["hint"] and "Traceback" not in res.output


def test_an_unknown_notebook_names_the_known_variants(cli, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_DAEMON)
    res = cli("bench", "update", "--notebook", "no-such-variant", "--json")
    assert res.code == ExitCode.INVALID_INPUT and "no-such-variant" in json.loads(res.out)["message"]


@pytest.mark.parametrize("blocker", [".dlbase", ".dlbase/bench"])
def test_an_unwritable_state_folder_stops_bench_update_before_any_work(cli, project_copy, monkeypatch, blocker):
    monkeypatch.setenv("DOCKER_HOST", NO_DAEMON)
    (project_copy / blocker).parent.mkdir(parents=True, exist_ok=True)
    (project_copy / blocker).write_text("a file where dlbase keeps its state")
    res = cli("bench", "update", "--json")
    assert res.code == ExitCode.INVALID_INPUT, res.output
    doc = json.loads(res.out)
    assert "not a folder" in doc["message"] and blocker in doc["message"] and doc["hint"]


def test_a_missing_docker_registry_is_said_before_the_daemon(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", NO_DAEMON)
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker-registry on it
    res = cli("bench", "update", "--json")
    assert res.code == ExitCode.MISSING and "docker-registry" in json.loads(res.out)["message"]


def test_the_pin_goes_through_yaml_even_when_the_variant_has_packages(project_copy, edit):
    """A text replacement added a second `packages:` key under such a variant (invalid YAML)."""
    matrix = project_copy / "images" / "matrix.yaml"
    edit(matrix, f"  - name: {RUNTIME}\n", f"  - name: {RUNTIME}\n    packages: {{numpy: \"2.2.6\"}}  # kept\n")
    bu.pin_in_matrix(matrix, RUNTIME, "pyyaml", "6.0.2")
    text = matrix.read_text()
    assert "# kept" in text and "# What each flavor adds." in text
    variant = Project.discover(root=project_copy).matrix.get(RUNTIME)
    assert variant.packages["pyyaml"] == "6.0.2" and variant.packages["numpy"] == "2.2.6"
    bu.pin_in_matrix(matrix, NOTEBOOK, "pyyaml", "6.0.2")  # a variant without packages: gets one
    assert Project.discover(root=project_copy).matrix.get(NOTEBOOK).packages["pyyaml"] == "6.0.2"
    with pytest.raises(InvalidInput, match="cannot find variant"):
        bu.pin_in_matrix(matrix, "no-such", "pyyaml", "6.0.2")


def test_the_flavor_layer_is_named_by_the_matrix_not_by_a_file_name(project_copy, edit):
    edit(project_copy / "images" / "matrix.yaml", "  - name: flavor\n    flavor: true\n",
         "  - name: own\n    flavor: true\n")
    project = Project.discover(root=project_copy)
    files = bu.flavor_layer_files(project, spec_of(project, NOTEBOOK))
    assert files == ("/opt/dlbase/layers/06-own.txt",)

    class History:
        def image_history(self, _image):
            return [{"CreatedBy": "/bin/sh -c /opt/venv/bin/python -B /opt/dlbase/install_group.py "
                                  "--installer uv /opt/dlbase/layers/06-own.txt", "Size": 123},
                    {"CreatedBy": "/bin/sh -c /opt/venv/bin/python -B /opt/dlbase/install_group.py "
                                  "--installer uv /opt/dlbase/layers/05-test.txt", "Size": 7}]

    assert bu._own_bytes(History(), "nb", "layered", 0, files) == 123
    assert bu._own_bytes(History(), "nb", "single", 55, files) == 55


def test_the_report_names_no_issue(tmp_path: Path):
    _j, _m, table = bu.write(bench(single=[80.0], layered=[70.0], naive=[]), tmp_path)
    assert "measured before" in table and "issue" not in table.lower()


def test_product_code_names_no_issue_numbers():
    pattern = re.compile(r"[Ii]ssue ?#?[0-9]+|issue's")
    hits = [f"{p.relative_to(REPO)}:{n}" for base in ("tools/dlbase", "runtime", "images/_build")
            for p in sorted((REPO / base).rglob("*.py")) if "suites" not in p.parts
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
