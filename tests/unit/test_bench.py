"""The bench report: ratios come from the numbers of one run, and both files are written."""

from __future__ import annotations

import json
from pathlib import Path

from dlbase.bench.build import BuildBench, write


def _bench() -> BuildBench:
    return BuildBench(variant="v", base_bytes=100, venv_bytes=900, payload_bytes=1000, image_bytes=1100,
                      naive_bytes=2200, cold_seconds=200.0, warm_seconds=5.0, naive_seconds=300.0)


def test_ratios_are_computed_from_the_measured_values() -> None:
    r = _bench().ratios
    assert r == {"image_over_payload": 1.1, "image_over_naive": 0.5, "warm_over_cold": 0.025,
                 "naive_over_cold_seconds": 1.5}


def test_write_produces_json_and_a_markdown_table_with_the_same_numbers(tmp_path: Path) -> None:
    jpath, mpath, table = write(_bench(), tmp_path)
    data = json.loads(jpath.read_text())
    assert data["ratios"]["warm_over_cold"] == 0.025 and data["cold_seconds"] == 200.0
    assert "| warm rebuild (test file changed) | 5.0 s | warm / cold = 0.025 |" in table
    assert table in mpath.read_text()
