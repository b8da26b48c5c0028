"""`dlbase bench data` end to end on the real default image (read only; skipped when it is not
built here): the script is copied into the container, its JSON comes back, the table and the
PNG are written, and a host Python without torch is reported as not measured, with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REF = "dlbase/pytorch:2.6-cu124-runtime-debian12"


def test_quick_bench_in_the_default_image(engine, tmp_path):
    if not engine.image_exists(DEFAULT_REF):
        pytest.skip(f"{DEFAULT_REF} is not built on this daemon (make all builds it)")
    png = tmp_path / "plot.png"
    proc = subprocess.run([sys.executable, "-m", "dlbase", "bench", "data", DEFAULT_REF, "--quick", "--workers", "0,1",
                           "--png", str(png), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DLBASE_ROOT": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    pipes = doc["in_image"]["pipelines"]
    assert set(pipes) == {"colour 224px (seed: jitter+blur+normalize)", "detection 640px + boxes (seed)",
                          "validation 640px + boxes (seed)"}
    assert all(row["cpu_median_ms"] > 0 and row["p90_ms"] >= row["median_ms"] for row in pipes.values())
    assert [r["num_workers"] for r in doc["in_image"]["loader"]["rows"]] == [0, 1]
    assert doc["in_image"]["versions"]["torch"] == "2.6.0" and doc["in_image"]["in_image"] is True
    assert doc["in_image"]["preflight"]["preflight_ms"]["median_ms"] > 0
    if doc["host"] is None:
        assert doc["host_reason"] and doc["ratios"] == {}
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert any(f.endswith(".md") for f in doc["files"])
