"""DDP through torchrun: gloo with 2 CPU ranks everywhere, NCCL with one rank per GPU on GPU hosts."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("ddp_train.py")
TIMEOUT_S = 240


def torchrun_command() -> list[str]:
    """The torchrun entry point installed next to this interpreter (falls back to the module)."""
    candidate = Path(sys.executable).with_name("torchrun")
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("torchrun")
    return [found] if found else [sys.executable, "-m", "torch.distributed.run"]


def run_ddp(backend: str, nproc: int, tmp_path: Path) -> dict:
    result = tmp_path / f"ddp-{backend}.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [*torchrun_command(), "--standalone", f"--nproc_per_node={nproc}", str(SCRIPT), backend, str(result)]
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} did not finish in {TIMEOUT_S} s:\n{exc.stdout}\n{exc.stderr}")
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    data = json.loads(result.read_text())
    assert data["world_size"] == nproc and data["all_reduce"] == nproc * (nproc + 1) / 2
    assert data["losses"][-1] < data["losses"][0]
    return data


@pytest.mark.ddp
def test_ddp_gloo_two_cpu_ranks_all_reduce_sums_loss_falls_parameters_stay_identical(tmp_path: Path) -> None:
    run_ddp("gloo", 2, tmp_path)


@pytest.mark.ddp
@pytest.mark.gpu
def test_ddp_nccl_one_rank_per_gpu_all_reduce_sums_loss_falls_parameters_stay_identical(tmp_path: Path) -> None:
    """NCCL refuses two ranks on one GPU, so the run uses exactly one rank per visible GPU."""
    import torch

    run_ddp("nccl", torch.cuda.device_count(), tmp_path)
