"""`dlbase doctor`'s parsing and verdicts, from sample outputs of real drivers (no GPU needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dlbase.verify import doctor
from dlbase.verify.doctor import FAIL, NO_GPU, OK, WARN, Gpu, HostFacts, Line

SMI_H100 = "0, NVIDIA H100 80GB HBM3, 550.54.15, 9.0\n"
SMI_TWO = "0, Tesla T4, 535.104.05, 7.5\n1, NVIDIA GeForce RTX 4090, 535.104.05, 8.9\n"
SMI_OLD = "0, Tesla K80, 470.82.01\n"  # drivers < 510 cannot query compute_cap
SMI_NA = "0, NVIDIA A100-SXM4-40GB, 525.60.13, [N/A]\n"
SMI_BANNER = """\
Mon Nov 24 02:55:01 2026
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
"""
PROC_PROPRIETARY = """\
NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023
GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)
"""
PROC_OPEN = """\
NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024
GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)
"""
PROC_ARM = "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  570.86.15  Release Build  (dvs-builder@U16)\n"

ARCH = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
CU118 = Line("cu118", "11.8", "520.61.05", "450.80.02", ARCH, ("a",))
CU124 = Line("cu124", "12.4", "550.54.14", "525.60.13", ARCH, ("b", "c"))
CU126 = Line("cu126", "12.6", "560.28.03", "525.60.13", ARCH, ("d",))
CU128 = Line("cu128", "12.8", "570.26", "525.60.13", ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), ("e",))
LINES = [CU118, CU124, CU126]


def test_parse_nvidia_smi_csv_one_gpu() -> None:
    (gpu,) = doctor.parse_nvidia_smi_csv(SMI_H100)
    assert gpu == Gpu(index=0, name="NVIDIA H100 80GB HBM3", driver="550.54.15", compute_cap="9.0")
    assert gpu.sm == "sm_90"


def test_parse_nvidia_smi_csv_two_gpus_and_old_driver_and_na() -> None:
    t4, rtx = doctor.parse_nvidia_smi_csv(SMI_TWO)
    assert (t4.name, t4.sm, rtx.index, rtx.sm) == ("Tesla T4", "sm_75", 1, "sm_89")
    (k80,) = doctor.parse_nvidia_smi_csv(SMI_OLD)
    assert (k80.name, k80.driver, k80.compute_cap) == ("Tesla K80", "470.82.01", None)
    (a100,) = doctor.parse_nvidia_smi_csv(SMI_NA)
    assert (a100.driver, a100.compute_cap) == ("525.60.13", None)


def test_parse_nvidia_smi_csv_ignores_headers_and_errors() -> None:
    text = "index, name, driver_version, compute_cap\n" + SMI_H100 + "\nNo devices were found\n"
    assert [g.index for g in doctor.parse_nvidia_smi_csv(text)] == [0]
    assert doctor.parse_nvidia_smi_csv("NVIDIA-SMI has failed because it couldn't communicate with the driver") == []


def test_parse_banner_and_proc_version() -> None:
    assert doctor.parse_nvidia_smi_banner(SMI_BANNER) == "550.54.15"
    assert doctor.parse_nvidia_smi_banner("command not found") is None
    assert doctor.parse_proc_driver_version(PROC_PROPRIETARY) == "535.104.05"
    assert doctor.parse_proc_driver_version(PROC_OPEN) == "550.54.14"
    assert doctor.parse_proc_driver_version(PROC_ARM) == "570.86.15"
    assert doctor.parse_proc_driver_version("") is None


@pytest.mark.parametrize(("driver", "line", "status"), [
    ("550.54.15", CU124, OK),
    ("550.54.14", CU124, OK),  # exactly the minimum
    ("535.104.05", CU124, WARN),  # minor-version compatibility
    ("525.60.13", CU126, WARN),  # exactly the floor
    ("520.61.05", CU124, FAIL),  # below the 12.x floor
    ("520.61.05", CU118, OK),
    ("470.82.01", CU118, WARN),
    ("440.33.01", CU118, FAIL),
    ("570.26", CU128, OK),  # two-part driver versions compare right
])
def test_driver_verdict(driver: str, line: Line, status: str) -> None:
    got, detail, fix = doctor.driver_verdict(driver, line)
    assert got == status, detail
    assert bool(fix) == (status != OK)


@pytest.mark.parametrize(("cap", "line", "status", "text"), [
    ("9.0", CU124, OK, "sm_90 is in"),
    ("8.9", CU124, OK, "sm_86 kernels"),  # Ada runs Ampere cubins
    ("7.5", CU124, OK, "sm_75 is in"),
    ("10.0", CU124, FAIL, "no kernels"),  # Blackwell needs a cu128 build
    ("10.0", CU128, OK, "sm_100 is in"),
    ("3.7", CU118, FAIL, "no kernels"),  # Kepler is gone
    ("6.1", CU118, OK, "sm_60 kernels"),
])
def test_arch_verdict(cap: str, line: Line, status: str, text: str) -> None:
    got, detail, _fix = doctor.arch_verdict(cap, line)
    assert got == status and text in detail, detail


def _rows(facts: HostFacts, **kw) -> dict[str, doctor.HostCheck]:
    return {r.check: r for r in doctor.diagnose(facts, LINES, **kw)}


def test_diagnose_cpu_host_says_no_gpu_and_fails_nothing() -> None:
    facts = HostFacts(docker_ok=True, docker_detail="Docker 20.10", nvidia_runtime=False,
                      gpu_note="nvidia-smi not found; /proc/driver/nvidia/version absent", shm_bytes=16 << 30)
    rows = _rows(facts)
    assert rows["GPU"].status == NO_GPU and "no GPU" in rows["GPU"].detail
    assert rows["NVIDIA container runtime"].status == NO_GPU
    assert all(r.status != FAIL for r in rows.values())
    assert rows["/dev/shm size"].status == OK
    # --require-gpu: the same host fails, each failure with a fix
    strict = doctor.diagnose(facts, LINES, require_gpu=True)
    failed = [r for r in strict if r.status == FAIL]
    assert {"GPU", "NVIDIA container runtime"} <= {r.check for r in failed}
    assert all(r.fix for r in failed)


def test_diagnose_gpu_host_old_driver_and_no_runtime() -> None:
    facts = HostFacts(docker_ok=True, nvidia_runtime=False, driver="520.61.05", driver_source="nvidia-smi",
                      gpus=[Gpu(0, "NVIDIA A100", "520.61.05", "8.0")], shm_bytes=512 << 20)
    rows = _rows(facts)
    assert rows["GPU"].status == OK and "sm_80" in rows["GPU"].detail
    runtime = rows["NVIDIA container runtime"]
    assert runtime.status == FAIL and "nvidia-container-toolkit" in runtime.fix
    assert rows["driver for cu118 (CUDA 11.8; 1 variant(s))"].status == OK
    cu124 = rows["driver for cu124 (CUDA 12.4; 2 variant(s))"]
    assert cu124.status == FAIL and "550.54.14" in cu124.fix and "cu118" in cu124.fix
    assert rows["compute capability vs torch cu124 kernels"].status == OK
    assert rows["/dev/shm size"].status == FAIL and "remount" in rows["/dev/shm size"].fix


def test_diagnose_docker_down_and_blackwell() -> None:
    facts = HostFacts(docker_ok=False, docker_detail="Docker daemon at unix:///x is not reachable",
                      nvidia_runtime=None, driver="570.86.15", driver_source="nvidia-smi",
                      gpus=[Gpu(0, "NVIDIA B200", "570.86.15", "10.0")], shm_bytes=None)
    rows = _rows(facts)
    assert rows["Docker daemon reachable"].status == FAIL and rows["Docker daemon reachable"].fix
    assert rows["NVIDIA container runtime"].status == FAIL
    arch = rows["compute capability vs torch cu124 kernels"]
    assert arch.status == FAIL and "sm_100" in arch.detail and arch.fix
    assert rows["/dev/shm size"].status == FAIL


def test_gather_falls_back_to_proc_version(tmp_path: Path) -> None:
    class NoDaemon:
        endpoint = "unix:///nowhere"

        def ping(self) -> None:
            from dlbase.core.errors import DaemonUnavailable
            raise DaemonUnavailable("Docker daemon at unix:///nowhere is not reachable")

    proc = tmp_path / "version"
    proc.write_text(PROC_OPEN)
    calls = []

    def run(cmd: list[str]) -> tuple[int, str]:
        calls.append(cmd)
        return 9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."

    facts = doctor.gather(NoDaemon(), which=lambda _n: "/usr/bin/nvidia-smi", run=run, proc_version=proc,
                          shm_path=tmp_path)
    assert not facts.docker_ok and "not reachable" in facts.docker_detail
    assert (facts.driver, facts.driver_source) == ("550.54.14", str(proc))
    assert "nvidia-smi failed" in facts.gpu_note and calls
    assert facts.shm_bytes and facts.shm_bytes > 0


def test_gather_retries_without_compute_cap_on_old_drivers(tmp_path: Path) -> None:
    class Daemon:
        endpoint = "unix:///fake"

        def ping(self) -> None: ...

        def version(self) -> dict:
            return {"Version": "20.10", "ApiVersion": "1.41"}

        def has_nvidia_runtime(self) -> bool:
            return True

    def run(cmd: list[str]) -> tuple[int, str]:
        if any("compute_cap" in c for c in cmd):
            return 2, 'Field "compute_cap" is not a valid field to query.'
        return 0, SMI_OLD

    facts = doctor.gather(Daemon(), which=lambda _n: "/usr/bin/nvidia-smi", run=run,
                          proc_version=tmp_path / "absent", shm_path=tmp_path)
    assert facts.docker_ok and facts.nvidia_runtime
    assert facts.driver == "470.82.01" and facts.gpus[0].compute_cap is None
    rows = {r.check: r for r in doctor.diagnose(facts, LINES)}
    assert rows["compute capability vs torch cu118 kernels"].status == WARN


def test_doctor_cli_on_this_host_says_no_gpu_or_lists_gpus(cli) -> None:
    """The real verb on the real host: works with or without a daemon or GPU."""
    res = cli("doctor", "--json")
    assert res.code in (0, 1), res.output
    body = res.json()
    checks = {c["check"]: c for c in body["checks"]}
    assert {"Docker daemon reachable", "GPU", "NVIDIA container runtime", "/dev/shm size"} <= set(checks)
    assert any(name.startswith("driver for cu124") for name in checks)
    if not body["gpus"] and body["driver"] is None:
        assert checks["GPU"]["status"] == NO_GPU and "no GPU" in checks["GPU"]["detail"]
        strict = cli("doctor", "--require-gpu")
        assert strict.code == 1 and "GPU" in strict.output
