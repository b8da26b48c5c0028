"""The start-up preflight, run where the image runs: on a GPU host its driver and arch rows
must say ok (the only place they can be checked for real: no build machine has a GPU).

The preflight file is /opt/dlbase/preflight.py in an image, runtime/preflight.py in a checkout.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

CANDIDATES = (Path("/opt/dlbase/preflight.py"), Path(__file__).resolve().parents[2] / "runtime" / "preflight.py")


@pytest.fixture(scope="module")
def preflight():
    path = next((p for p in CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip("no preflight.py here (an image built before the preflight, or a partial checkout)")
    spec = importlib.util.spec_from_file_location("image_preflight", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_preflight"] = module
    spec.loader.exec_module(module)
    return module


def test_preflight_never_stops_a_cpu_or_gpu_run_that_does_not_require_a_gpu(preflight, tmp_path):
    rows = preflight.run_checks({"DLBASE_WORKSPACE": str(tmp_path)})
    assert [r.name for r in rows] == ["driver", "gpu arch", "shm", "workspace"]
    assert not [r for r in rows if r.status == "fail"], rows
    assert all(r.fix for r in rows if r.status in ("warn", "fail")), rows


@pytest.mark.gpu
def test_on_a_gpu_host_driver_and_arch_rows_are_ok(preflight, tmp_path):
    rows = {r.name: r for r in preflight.run_checks({"DLBASE_WORKSPACE": str(tmp_path), "DLBASE_REQUIRE_GPU": "1"})}
    assert rows["driver"].status == "ok", rows["driver"]
    assert rows["gpu arch"].status == "ok", rows["gpu arch"]


@pytest.mark.gpu
def test_preflight_agrees_with_torch_about_the_gpu(preflight):
    import torch

    facts = preflight.gpu_facts()
    assert facts.driver is not None, facts.error
    assert len(facts.gpus) == torch.cuda.device_count()
    for gpu in facts.gpus:
        assert gpu.capability == torch.cuda.get_device_capability(gpu.index)
