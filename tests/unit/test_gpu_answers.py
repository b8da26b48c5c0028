"""What real hosts answer about their GPUs, read by `dlbase doctor` and by the image's preflight.

Each file in tests/unit/data/gpu-answers/ is one host seen in a public bug report (MIG,
vGPU, "[N/A]", "[Not Supported]", mixed GPUs, no driver, a driver/library mismatch, a driver
too old for compute_cap). Both readers get the same answers and must agree on the driver
and the GPUs; neither may raise, and no answer that is merely unknown may stop a container.
The nvidia-smi and NVML stand-ins replay the recorded answers (a fake of the host's
programs, for these error paths; the real programs only exist on a GPU host).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from dlbase.verify import doctor

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = sorted((Path(__file__).parent / "data" / "gpu-answers").glob("*.json"))
INFO = json.loads((ROOT / "images" / "torch2.6-cu124-runtime-debian12" / "image.json").read_text())
_spec = importlib.util.spec_from_file_location("dlbase_preflight_answers", ROOT / "runtime" / "preflight.py")
pf = importlib.util.module_from_spec(_spec)
sys.modules["dlbase_preflight_answers"] = pf
_spec.loader.exec_module(pf)
LINES = [doctor.Line("cu124", "12.4", "550.54.14", "525.60.13", tuple(INFO["arch_list"]), ("v",))]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def smi_runner(case: dict):
    """nvidia-smi as the host answered: by the --query-gpu field list asked."""
    answers = case["nvidia_smi"] or {}

    def run(args: list[str]) -> tuple[int, str]:  # doctor passes the program first, the preflight not
        fields = next((a.split("=", 1)[1] for a in args if a.startswith("--query-gpu=")), "")
        got = answers.get(fields)
        if got is None:
            return 2, f'Field "{fields}" is not a valid field to query.'
        return got["returncode"], got["output"]
    return run


class FakeNvml:
    """libnvidia-ml as the host answered (the calls preflight._nvml makes, nothing more)."""

    def __init__(self, answer: dict) -> None:
        self.answer = answer
        self.shut = False

    def nvmlInit_v2(self) -> int:
        return self.answer["init"]

    def nvmlSystemGetDriverVersion(self, buf, _size) -> int:
        buf.value = self.answer["driver"].encode()
        return 0

    def nvmlDeviceGetCount_v2(self, count) -> int:
        count._obj.value = len(self.answer["devices"])
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, index, handle) -> int:
        handle._obj.value = index.value + 1
        return 0

    def _device(self, handle) -> dict:
        return self.answer["devices"][handle.value - 1]

    def nvmlDeviceGetName(self, handle, buf, _size) -> int:
        buf.value = self._device(handle)["name"].encode()
        return 0

    def nvmlDeviceGetCudaComputeCapability(self, handle, major, minor) -> int:
        device = self._device(handle)
        if "cc_error" in device:
            return device["cc_error"]
        major._obj.value, minor._obj.value = device["cc"]
        return 0

    def nvmlShutdown(self) -> int:
        self.shut = True
        return 0


def nvml_loader(case: dict):
    def load():
        if case.get("nvml") is None:
            raise OSError("libnvidia-ml.so.1: cannot open shared object file: No such file or directory")
        return FakeNvml(case["nvml"])
    return load


def _cap_text(cap: tuple[int, int] | None) -> str | None:
    return f"{cap[0]}.{cap[1]}" if cap else None


def test_every_answer_names_its_source() -> None:
    assert len(ANSWERS) >= 8
    for path in ANSWERS:
        case = load(path)
        assert case["source"].startswith("https://github.com/"), path.name
        assert case["seen"] and case["transcribed"], path.name


class NoDaemon:
    endpoint = "unix:///nowhere"

    def ping(self) -> None:
        from dlbase.core.errors import DaemonUnavailable
        raise DaemonUnavailable("not reachable")


@pytest.mark.parametrize("path", ANSWERS, ids=[p.stem for p in ANSWERS])
def test_doctor_reads_the_answer(path: Path, tmp_path: Path) -> None:
    case = load(path)
    which = (lambda _n: "/usr/bin/nvidia-smi") if case["nvidia_smi"] is not None else (lambda _n: None)
    facts = doctor.gather(NoDaemon(), which=which, run=smi_runner(case), proc_version=tmp_path / "absent",
                          shm_path=tmp_path)
    expect = case["expect"]
    assert facts.driver == expect["driver"]
    assert [[g.index, g.name, g.compute_cap] for g in facts.gpus] == expect["gpus"]
    if expect.get("error"):
        assert expect["error"] in facts.gpu_note
    rows = {r.check: r for r in doctor.diagnose(facts, LINES)}
    arch = rows["compute capability vs torch cu124 kernels"]
    if facts.gpus and any(g[2] is None for g in expect["gpus"]):
        assert arch.status != doctor.FAIL, arch  # unknown is a warning with a fix, never a failure
        assert arch.fix or arch.status == doctor.OK


@pytest.mark.parametrize("path", ANSWERS, ids=[p.stem for p in ANSWERS])
def test_preflight_reads_nvidia_smi_like_doctor(path: Path) -> None:
    case = load(path)
    if case["nvidia_smi"] is None:
        pytest.skip("no nvidia-smi on that host")
    facts = pf._nvidia_smi(run=smi_runner(case))
    expect = case["expect"]
    assert facts.driver == expect["driver"]
    assert [[g.index, g.name, _cap_text(g.capability)] for g in facts.gpus] == expect["gpus"]
    if expect.get("error"):
        assert expect["error"] in facts.error


@pytest.mark.parametrize("path", ANSWERS, ids=[p.stem for p in ANSWERS])
def test_preflight_reads_nvml(path: Path) -> None:
    case = load(path)
    if "nvml" not in case:
        pytest.skip("the report shows no NVML answer")
    facts = pf._nvml(load=nvml_loader(case))
    expect = case["expect"]
    if case["nvml"] is None:
        assert (facts.driver, facts.source, facts.error) == (None, "none", "")  # then nvidia-smi is asked
        return
    if case["nvml"]["init"] != 0:
        assert facts.driver is None and f"NVML error {case['nvml']['init']}:" in facts.error
        assert expect["error"].lower() in facts.error.lower() or "not loaded" in facts.error
        return
    assert facts.driver == expect.get("nvml_driver", expect["driver"])
    want = expect.get("nvml_gpus", expect["gpus"])
    assert [[g.index, g.name, _cap_text(g.capability)] for g in facts.gpus] == want


@pytest.mark.parametrize("require_gpu", [False, True])
@pytest.mark.parametrize("path", ANSWERS, ids=[p.stem for p in ANSWERS])
def test_no_answer_makes_the_preflight_raise_or_stop_for_an_unknown(path: Path, require_gpu: bool,
                                                                   tmp_path: Path) -> None:
    """Every reading through both sources, through every check: rows, never an exception.
    A GPU whose capability is unknown is a warning, even with DLBASE_REQUIRE_GPU=1."""
    case = load(path)
    env = {"DLBASE_IMAGE_INFO": str(ROOT / "images/torch2.6-cu124-runtime-debian12/image.json"),
           "DLBASE_WORKSPACE": str(tmp_path), **({"DLBASE_REQUIRE_GPU": "1"} if require_gpu else {})}
    readings = [pf._nvml(load=nvml_loader(case))] if "nvml" in case else []
    if case["nvidia_smi"] is not None:
        readings.append(pf._nvidia_smi(run=smi_runner(case)))
    for facts in readings:
        rows = {r.name: r for r in pf.run_checks(env, facts=facts, shm=8 << 30)}
        assert all(r.status in ("ok", "warn", "fail", "skip") for r in rows.values())
        if facts.gpus and any(g.capability is None for g in facts.gpus):
            assert rows["gpu arch"].status == "warn" and "compute capability" in rows["gpu arch"].detail
            assert rows["gpu arch"].fix
        if facts.driver is None:
            assert rows["driver"].status == ("fail" if require_gpu else "skip")


def test_mismatch_names_the_reboot() -> None:
    facts = pf._nvml(load=nvml_loader(load(ANSWERS[0].parent / "driver-library-mismatch.json")))
    row = pf.check_driver(facts, INFO, False)
    assert "version mismatch" in row.detail and "reboot" in row.detail


def test_nvml_is_shut_down_after_reading() -> None:
    lib = FakeNvml(load(ANSWERS[0].parent / "mixed-gpus.json")["nvml"])
    pf._nvml(load=lambda: lib)
    assert lib.shut


def test_fake_nvml_writes_through_byref_like_the_real_library() -> None:
    """The stand-in relies on ctypes.byref(x)._obj being x: if that changed, every NVML test
    above would test nothing."""
    value = ctypes.c_int(0)
    ctypes.byref(value)._obj.value = 7
    assert value.value == 7
