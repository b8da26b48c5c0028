"""What a trust predicate records that must be asked of the machine: the facts of the host
that verified an image (through doctor), and the Debian packages inside the image.

Kept apart from :mod:`dlbase.trust.predicates`, which only arranges these answers into
documents, so that the documents stay plain data that needs no daemon to build or test.
"""

from __future__ import annotations

import re

from dlbase.engine import Engine
from dlbase.verify import doctor

DPKG_FORMAT = "${Package}\\t${Version}\\t${Architecture}\\n"


def debian_packages(engine: Engine, image: str, labels: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(name, version, arch) of every installed Debian package, from dpkg inside the image."""
    result = engine.run(image, ["dpkg-query", "-W", f"-f={DPKG_FORMAT}"], entrypoint=[],  # no preflight lines
                        network_mode="none", timeout=120, labels=labels)
    if not result.ok:
        return []
    found = []
    for line in result.output.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and all(parts):
            found.append((parts[0], parts[1], parts[2]))
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
