"""The facts of this host that a verification result and a rebuilt statement record: its
GPUs and driver (through doctor), the CUDA version the driver supports, and what builds here.

Kept apart from :mod:`dlbase.trust.predicates`, which only arranges these answers into
documents, so that the documents stay plain data that needs no daemon to build or test;
the Debian packages inside an image are :mod:`dlbase.image.debian`'s.
"""

from __future__ import annotations

import re

from dlbase.engine import Engine
from dlbase.verify import doctor


def builder_versions(engine: Engine, run=doctor._run, which=doctor.shutil.which) -> dict:  # noqa: SLF001
    """The versions of what builds here, for a rebuilt-identical statement: the Docker
    engine (its API answer), buildx (``docker buildx version``) and the BuildKit of the
    current builder (``docker buildx inspect``; Debian's embedded one says
    ``v0.0.0+unknown``). What cannot be read is None, not a guess."""
    found: dict = {"docker": None, "dockerApi": None, "buildx": None, "buildkit": None}
    try:
        version = engine.version()
        found["docker"], found["dockerApi"] = version.get("Version"), version.get("ApiVersion")
    except Exception:  # noqa: BLE001 - the daemon's answer is a fact, its absence too
        pass
    docker = which("docker")
    if docker:
        rc, out = run([docker, "buildx", "version"])
        parts = out.split() if rc == 0 else []
        found["buildx"] = parts[1] if len(parts) > 1 else None
        rc, out = run([docker, "buildx", "inspect"])
        match = re.search(r"^BuildKit version:\s*(\S+)", out, re.MULTILINE) if rc == 0 else None
        found["buildkit"] = match.group(1) if match else None
    return found


def cuda_driver_version(run=doctor._run, which=doctor.shutil.which) -> str | None:  # noqa: SLF001
    """The CUDA version the driver supports, from the nvidia-smi banner; None without one."""
    smi = which("nvidia-smi")
    if not smi:
        return None
    rc, out = run([smi])
    match = re.search(r"CUDA Version:\s*(\d+\.\d+)", out) if rc == 0 else None
    return match.group(1) if match else None


def host_facts(engine: Engine, label: str | None) -> dict:
    """The facts of this host that a verification result carries (doctor gathers them)."""
    facts = doctor.gather(engine)
    version = {}
    try:
        version = engine.version()
    except Exception:  # noqa: BLE001 - the daemon's answer is a fact, its absence too
        version = {}
    return {
        "label": label,
        "gpus": [{"index": g.index, "name": g.name, "driver": g.driver, "computeCapability": g.compute_cap,
                  "sm": g.sm} for g in facts.gpus],
        "driver": facts.driver,
        "cudaDriverVersion": cuda_driver_version(),
        "dockerVersion": version.get("Version"),
        "nvidiaRuntime": facts.nvidia_runtime,
        "shmBytes": facts.shm_bytes,
        "gpuNote": facts.gpu_note or None,
    }
