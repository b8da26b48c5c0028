"""The image's preflight (runtime/preflight.py) on the host: its decisions, from given facts.

The real runs (64 MB shm, read-only workspace, arbitrary UID, a stop) are in
tests/integration/test_preflight.py; GPU rows can only be fed facts here, because no GPU
machine has Docker (the GPU host runs the in-image suite directly).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "runtime" / "preflight.py"
_spec = importlib.util.spec_from_file_location("dlbase_preflight", SCRIPT)
pf = importlib.util.module_from_spec(_spec)
sys.modules["dlbase_preflight"] = pf
_spec.loader.exec_module(pf)

INFO = json.loads((ROOT / "images" / "torch2.6-cu124-runtime-debian12" / "image.json").read_text())
NO_GPU = pf.GpuFacts(driver=None)
H100 = pf.GpuFacts(driver="550.54.14", gpus=(pf.Gpu(0, "NVIDIA H100", (9, 0)),), source="nvml")


def test_image_json_carries_the_facts_the_preflight_needs():
    assert INFO["minor_floor_driver"] == "525.60.13"
    assert INFO["min_driver"] == "550.54.14"
    assert "sm_90" in INFO["arch_list"]


@pytest.mark.parametrize("facts,require,status", [
    (NO_GPU, False, "skip"),
    (NO_GPU, True, "fail"),
    (H100, False, "ok"),
    (pf.GpuFacts(driver="470.82.01", gpus=H100.gpus), False, "warn"),
    (pf.GpuFacts(driver="470.82.01", gpus=H100.gpus), True, "fail"),
])
def test_driver_row(facts, require, status):
    row = pf.check_driver(facts, INFO, require)
    assert row.status == status, row
    if status in ("warn", "fail"):
        assert row.fix


def test_old_driver_names_the_floor_and_the_line():
    row = pf.check_driver(pf.GpuFacts(driver="520.61.05"), INFO, False)
    assert "520.61.05 < 525.60.13" in row.detail and "cu124" in row.detail
    assert ">= 525.60.13" in row.fix


@pytest.mark.parametrize("cap,verdict", [
    ((9, 0), "native"), ((8, 9), "native"), ((8, 6), "native"), ((7, 5), "native"),
    ((10, 0), "no"), ((12, 0), "no"), ((3, 7), "no"),
])
def test_arch_support_follows_binary_compatibility(cap, verdict):
    assert pf.arch_support(cap, INFO["arch_list"])[0] == verdict


def test_ptx_lets_a_newer_gpu_jit():
    assert pf.arch_support((10, 0), ["sm_80", "sm_90", "compute_90"]) == ("ptx", "compute_90")


def test_blackwell_on_cu124_is_named_with_the_fix():
    facts = pf.GpuFacts(driver="570.86.10", gpus=(pf.Gpu(0, "NVIDIA B200", (10, 0)),))
    row = pf.check_arch(facts, INFO, False)
    assert row.status == "warn" and "B200" in row.detail and "sm 10.0" in row.detail
    assert pf.check_arch(facts, INFO, True).status == "fail"


@pytest.mark.parametrize("size,status", [(64 << 20, "warn"), (None, "warn"), (8 << 30, "ok"), (1 << 30, "ok")])
def test_shm_row(size, status):
    row = pf.check_shm(size, pf.DEFAULT_MIN_SHM)
    assert row.status == status
    if status == "warn":
        assert "--shm-size" in row.fix and "--ipc=host" in row.fix


def test_shm_message_says_64_mb():
    assert "64 MB" in pf.check_shm(64 << 20, pf.DEFAULT_MIN_SHM).detail


@pytest.mark.parametrize("text,expected", [("1g", 1 << 30), ("512m", 512 << 20), ("65536k", 64 << 20), ("100", 100)])
def test_parse_size(text, expected):
    assert pf.parse_size(text) == expected


def test_workspace_writable(tmp_path):
    assert pf.check_workspace(str(tmp_path), stop=True).status == "ok"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere: the unwritable case needs a normal user")
def test_workspace_not_writable(tmp_path):  # pragma: no cover - runs only as a normal user
    tmp_path.chmod(0o555)
    try:
        row = pf.check_workspace(str(tmp_path), stop=True)
        assert row.status == "fail" and "-u $(id -u):$(id -g)" in row.fix
    finally:
        tmp_path.chmod(0o755)


def test_mounts_below_reads_mountinfo(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text("1 0 8:1 / / rw - ext4 /dev/sda rw\n"
                  "2 1 8:1 /home/a/nb /workspace/notebooks rw - ext4 /dev/sda rw\n"
                  "3 1 8:1 /x /workspace2 rw - ext4 /dev/sda rw\n"
                  "4 1 8:1 /y /workspace/my\\040data ro - ext4 /dev/sda ro\n")
    assert pf.mounts_below("/workspace", str(mi)) == ["/workspace/my data", "/workspace/notebooks"]


def test_only_failures_stop_and_cpu_only_never_does(tmp_path):
    env = {"DLBASE_IMAGE_INFO": str(ROOT / "images/torch2.6-cu124-runtime-debian12/image.json"),
           "DLBASE_WORKSPACE": str(tmp_path)}
    rows = pf.run_checks(env, facts=NO_GPU, shm=64 << 20)
    assert [r.status for r in rows] == ["skip", "skip", "warn", "ok"]
    rows = pf.run_checks({**env, "DLBASE_REQUIRE_GPU": "1"}, facts=NO_GPU, shm=8 << 30)
    assert rows[0].status == "fail"
    text = "\n".join(pf.render(rows))
    assert "stopped before the command" in text and "DLBASE_SKIP_PREFLIGHT=1" in text


def test_script_runs_with_an_isolated_interpreter_and_imports_no_third_party_module(tmp_path):
    """What the entrypoint does: `python -I -S preflight.py`. It must not need site-packages."""
    code = (f"import runpy, sys; m = runpy.run_path({str(SCRIPT)!r}); "
            "rc = m['main']({'DLBASE_PREFLIGHT': 'quiet', 'DLBASE_WORKSPACE': %r}); "
            "heavy = [n for n in ('torch', 'numpy', 'dlbase', 'docker') if n in sys.modules]; "
            "print(rc, heavy)") % str(tmp_path)
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(None, 1) == ["0", "[]\n"] or proc.stdout.strip() == "0 []"


def test_an_unexpected_failure_is_one_line_and_the_command_runs(monkeypatch, capsys):
    """Only the documented stop (78) may keep a container from starting."""
    def broken(_env):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(pf, "run_checks", broken)
    assert pf.main({}) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "failed unexpectedly" in err and "IndexError" in err and "command runs" in err


def test_image_json_that_is_not_an_object_is_no_crash(tmp_path):
    info = tmp_path / "image.json"
    info.write_text("[]")
    rows = pf.run_checks({"DLBASE_IMAGE_INFO": str(info), "DLBASE_WORKSPACE": str(tmp_path)}, facts=H100, shm=8 << 30)
    assert rows[0].status == "warn" and "no driver floor" in rows[0].detail


@pytest.mark.parametrize("value", ["inf", "1e400", "-1g", "lots"])
def test_bad_min_shm_falls_back_to_the_default(tmp_path, value):
    rows = pf.run_checks({"DLBASE_MIN_SHM": value, "DLBASE_WORKSPACE": str(tmp_path)}, facts=NO_GPU, shm=512 << 20)
    assert rows[2].status == "warn" and "1 GB" in rows[2].detail


def test_mig_answer_through_the_real_script_and_a_real_nvidia_smi_program(tmp_path):
    """What the entrypoint runs (`python -I -S preflight.py`), with an nvidia-smi on PATH that
    answers like a MIG host ([N/A] capability; tests/unit/data/gpu-answers/mig-only-gpu-na.json)
    and no libnvidia-ml: this raised IndexError before, and the container did not start."""
    case = json.loads((ROOT / "tests/unit/data/gpu-answers/mig-only-gpu-na.json").read_text())
    answer = case["nvidia_smi"]["index,name,driver_version,compute_cap"]["output"]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\nprintf '%s' {answer!r}\n")
    smi.chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "DLBASE_WORKSPACE": str(tmp_path), "DLBASE_REQUIRE_GPU": "1",
           "DLBASE_IMAGE_INFO": str(ROOT / "images/torch2.6-cu124-runtime-debian12/image.json"),
           "DLBASE_PREFLIGHT": "verbose", "LD_LIBRARY_PATH": str(tmp_path)}
    code = (f"import ctypes, runpy, sys\n"
            f"try:\n    ctypes.CDLL('libnvidia-ml.so.1'); print('nvml present'); sys.exit(0)\n"
            f"except OSError:\n    pass\n"
            f"sys.argv = [{str(SCRIPT)!r}]\nrunpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], env=env, capture_output=True, text=True, timeout=60)
    if proc.stdout.strip() == "nvml present":
        pytest.skip("this host has libnvidia-ml: the preflight would ask NVML, not the stand-in nvidia-smi")
    assert proc.returncode == 0, proc.stderr
    assert "IndexError" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    arch = [line for line in proc.stderr.splitlines() if " gpu arch " in line]
    assert arch and "warn" in arch[0] and "A800" in arch[0] and "compute capability" in arch[0], proc.stderr
    assert any(" driver " in line and " ok " in line for line in proc.stderr.splitlines()), proc.stderr
