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
        def __init__(self, copy, engine, design, labels, created, say):
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

    def fake_naive(copy, spec, engine, ctx, labels):
        order.append("naive")
        return f"img-naive-{len(order)}", float(len(order))

    class FakeEngine:
        def remove_image(self, ref, force=False):
            removed.append(ref)

    monkeypatch.setattr(bu, "_Builder", FakeBuilder)
    monkeypatch.setattr(bu, "copy_project", lambda project, dest: dest)
    monkeypatch.setattr(bu, "naive_build", fake_naive)
    spec = type("Spec", (), {"name": "v"})()
    samples = bu.cold_builds(object(), spec, FakeEngine(), tmp_path, {}, ("layered", "single"), 3, lambda m: None)
    assert order == ["layered", "single", "naive", "single", "naive", "layered", "naive", "layered", "single"]
    assert samples == {"layered": [1.0, 6.0, 8.0], "single": [2.0, 4.0, 9.0], "naive": [3.0, 5.0, 7.0]}
    assert len(removed) == 9 and len(set(removed)) == 9
    assert bu.cold_builds(object(), object(), FakeEngine(), tmp_path, {}, ("layered",), 0, print) == {}
