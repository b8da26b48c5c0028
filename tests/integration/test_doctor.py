"""`dlbase doctor` on this machine's real daemon, and against a daemon that is not there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dlbase.engine import Engine

ROOT = Path(__file__).resolve().parents[2]


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlbase", "doctor", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_doctor_reports_this_host_in_one_table(engine: Engine) -> None:
    proc = doctor()
    gpu_host = shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/version").exists()
    for check in ("Docker daemon reachable", "GPU", "NVIDIA container runtime", "driver for cu124",
                  "compute capability vs torch cu124 kernels", "/dev/shm size"):
        assert check in proc.stdout, proc.stdout
    body = json.loads(doctor("--json").stdout)
    rows = {r["check"]: r for r in body["checks"]}
    assert rows["Docker daemon reachable"]["status"] == "ok"
    assert rows["NVIDIA container runtime"]["status"] in ("ok", "fail", "no GPU")
    if not gpu_host:
        # This machine: no GPU is said plainly, and is not a failure...
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert rows["GPU"]["status"] == "no GPU" and "no GPU" in rows["GPU"]["detail"]
        assert "no GPU" in proc.stdout
        # ...unless a GPU is required: then each failure comes with its fix.
        strict = doctor("--require-gpu", "--json")
        assert strict.returncode == 1
        failed = [r for r in json.loads(strict.stdout)["checks"] if r["status"] == "fail"]
        assert failed and all(r["fix"] for r in failed)


def test_doctor_without_a_daemon_fails_with_the_fix(tmp_path: Path) -> None:
    proc = doctor("--json", env={"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"})
    assert proc.returncode == 1, proc.stderr
    rows = {r["check"]: r for r in json.loads(proc.stdout)["checks"]}
    docker = rows["Docker daemon reachable"]
    assert docker["status"] == "fail" and "not reachable" in docker["detail"] and "setup.sh" in docker["fix"]


def test_doctor_narrows_to_named_variants() -> None:
    body = json.loads(doctor("torch2.6-cu118-runtime-ubuntu22.04", "--json").stdout)
    lines = [r["check"] for r in body["checks"] if r["check"].startswith("driver for")]
    assert lines == ["driver for cu118 (CUDA 11.8; 1 variant(s))"]
