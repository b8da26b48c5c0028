"""The three predicates dlbase attaches to an image, as plain data.

- SBOM: CycloneDX 1.5 with the image's Python distributions *and* its Debian packages
  (read from inside the image), predicate type ``https://cyclonedx.org/bom``;
- provenance: SLSA v1 (``https://slsa.dev/provenance/v1``) from what the image says
  about itself (labels written at build time: commit, variant, lock hash, base and its
  digest), the rendered Dockerfile's hash and the engine that built it;
- verification: dlbase's own type, documented in docs/trust-operators.md, holding the
  verify outcome and the facts of the host that ran it.

Only functions of their inputs here, apart from :func:`host_facts` and
:func:`debian_packages`, which ask the machine (the latter through the engine).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

from dlbase import __version__
from dlbase.verify import doctor
from dlbase.trust import sbom
from dlbase.engine import Engine

SBOM_TYPE = "https://cyclonedx.org/bom"
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
VERIFICATION_TYPE = "https://dlbase.dev/attestation/verification/v1"
BUILD_TYPE = "https://dlbase.dev/build/docker-classic/v1"
BUILDER_ID = "https://dlbase.dev/builder/dlbase"
DPKG_FORMAT = "${Package}\\t${Version}\\t${Architecture}\\n"
SUITE_DIRS = ("tests/image", "tests/infra")


def _sha256_file(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


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


def sbom_predicate(*, image_id: str, name: str, python: dict[str, str], debs: list[tuple[str, str, str]],
                   lock_path: Path | None, labels: dict[str, str]) -> dict:
    document = sbom.cyclonedx(image_id=image_id, image_name=name, packages=python, lock_path=lock_path,
                              properties={"dlbase:variant": str(labels.get("dlbase.variant")),
                                          "dlbase:lock-hash": str(labels.get("dlbase.lock-hash"))},
                              timestamp=labels.get("org.opencontainers.image.created"))
    return sbom.add_debian(document, debs, distro="debian-12")


def provenance_predicate(*, labels: dict[str, str], image_id: str, created: str | None,
                         build_seconds: float | None, dockerfile: Path | None, lock: Path | None,
                         engine_version: dict) -> dict:
    """SLSA v1 provenance from the image's own build-time labels and the project's files."""
    finished = created
    started = None
    if created and build_seconds:
        try:
            end = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
            started = (end - dt.timedelta(seconds=float(build_seconds))).isoformat(timespec="seconds")
        except ValueError:
            started = None
    deps = []
    base_digest = labels.get("org.opencontainers.image.base.digest")
    if labels.get("org.opencontainers.image.base.name"):
        dep = {"uri": labels["org.opencontainers.image.base.name"], "name": "base image"}
        if base_digest and base_digest.startswith("sha256:"):
            dep["digest"] = {"sha256": base_digest.split(":", 1)[1]}
        deps.append(dep)
    for label, path in (("rendered Dockerfile", dockerfile), ("requirements.lock", lock)):
        digest = _sha256_file(path) if path else None
        if digest:
            deps.append({"uri": f"file:{path.parent.name}/{path.name}", "name": label, "digest": {"sha256": digest}})
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "repository": labels.get("org.opencontainers.image.source"),
                "commit": labels.get("org.opencontainers.image.revision"),
                "variant": labels.get("dlbase.variant"),
                "lockHash": labels.get("dlbase.lock-hash"),
            },
            "internalParameters": {"baseImage": labels.get("org.opencontainers.image.base.name"),
                                   "baseDigest": base_digest, "imageId": image_id},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID,
                        "version": {"dlbase": __version__, "docker": str(engine_version.get("Version")),
                                    "dockerApi": str(engine_version.get("ApiVersion"))}},
            "metadata": {"invocationId": f"dlbase-build:{image_id}", "startedOn": started, "finishedOn": finished},
        },
    }


def suite_hash(root: Path) -> dict:
    """sha256 over the verify suite's files (path + content, sorted): which tests ran."""
    h = hashlib.sha256()
    count = 0
    for rel in SUITE_DIRS:
        base = root / rel
        for path in sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                           and p.suffix not in (".pyc",)):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
            count += 1
    return {"sha256": h.hexdigest(), "files": count, "dirs": list(SUITE_DIRS)}


def _cuda_driver_version(run=doctor._run, which=doctor.shutil.which) -> str | None:  # noqa: SLF001
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
        "cudaDriverVersion": _cuda_driver_version(),
        "dockerVersion": version.get("Version"),
        "nvidiaRuntime": facts.nvidia_runtime,
        "shmBytes": facts.shm_bytes,
        "gpuNote": facts.gpu_note or None,
    }


def verification_predicate(*, passed: bool, verified_at: str | None, counts: dict, failed_checks: list[str],
                           require_gpu: bool, partial: bool, gpus_used: bool | None, suite: dict, host: dict,
                           image: str, source: str, forced: bool = False, simulated: bool = False,
                           note: str | None = None) -> dict:
    return {
        "result": "passed" if passed else "failed",
        "verifiedAt": verified_at,
        "attestedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "requireGpu": bool(require_gpu),
        "gpusUsed": gpus_used,
        "partial": bool(partial),
        "forced": bool(forced),
        "simulated": bool(simulated),  # a record a test wrote by hand: it never meets a policy
        "counts": counts,
        "failedChecks": list(failed_checks),
        "suite": suite,
        "host": host,
        "image": image,
        "source": source,  # "dlbase verify --attest" | "dlbase push (local record)"
        "verifier": {"name": "dlbase", "version": __version__},
        "note": note,
    }
