"""`dlbase doctor`: can this host run the matrix's images on its GPUs?

One row per question, each failure with the fix: the Docker daemon answers; the NVIDIA
container runtime is there; the driver is new enough for each CUDA wheel line (full
feature set, or only through minor-version compatibility); torch's kernels cover the
GPU's compute capability; /dev/shm is large enough for DataLoader workers and NCCL.

The parsing of what the host reports (``nvidia-smi``, ``/proc/driver/nvidia/version``)
and the verdicts are pure functions of text and data, unit-tested with sample outputs;
only :func:`gather` looks at the machine. A host without a GPU gets "no GPU" rows, not
failures, unless the caller requires a GPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from dlbase.core import gpu as gpu_rules
from dlbase.core.errors import DlbaseError
from dlbase.core.sizes import DEFAULT_SHM, MIN_SHM_BYTES
from dlbase.core.sizes import parse as parse_size
from dlbase.engine import START_HINT, Engine
from dlbase.define.project import Project
from dlbase.define.spec import BuildSpec

OK, WARN, FAIL, NO_GPU = "ok", "warning", "fail", "no GPU"
PROC_VERSION = Path("/proc/driver/nvidia/version")
SHM_PATH = Path("/dev/shm")
SHM_MIN_BYTES = MIN_SHM_BYTES  # below this, even --ipc=host DataLoader workers run out
SHM_GOOD_BYTES = parse_size(DEFAULT_SHM)  # what the containers dlbase starts get
SMI_QUERY = ["--query-gpu=index,name,driver_version,compute_cap", "--format=csv,noheader"]
SMI_QUERY_OLD = ["--query-gpu=index,name,driver_version", "--format=csv,noheader"]  # drivers < 510
TOOLKIT_FIX = ("install nvidia-container-toolkit, run `sudo nvidia-ctk runtime configure --runtime=docker` "
               "and restart dockerd")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    driver: str | None
    compute_cap: str | None  # "9.0"; None when the driver cannot say

    @property
    def sm(self) -> str | None:
        cap = gpu_rules.compute_capability(self.compute_cap)
        return gpu_rules.sm_name(cap) if cap else None


@dataclass
class HostFacts:
    """What the host told us. Built by :func:`gather`, or by hand in tests."""

    docker_ok: bool
    docker_detail: str = ""
    nvidia_runtime: bool | None = None  # None: unknown (daemon unreachable)
    gpus: list[Gpu] = field(default_factory=list)
    driver: str | None = None
    driver_source: str = ""  # "nvidia-smi" | "/proc/driver/nvidia/version" | ""
    gpu_note: str = ""  # why no GPU was found
    shm_bytes: int | None = None


@dataclass(frozen=True)
class Line:
    """A CUDA wheel line of the matrix with what it needs from the host."""

    name: str  # cu124
    cuda: str  # 12.4
    min_driver: str  # full feature set
    floor_driver: str  # minor-version compatibility
    arch_list: tuple[str, ...]
    variants: tuple[str, ...]


@dataclass
class HostCheck:
    """One line of doctor's table: a check of this host, its status, and the fix."""

    check: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- parsing (pure)


_DRIVER_RE = re.compile(r"\d{3,}\.\d+(?:\.\d+)?")
_RANK = {OK: 0, NO_GPU: 1, WARN: 2, FAIL: 3}


def parse_nvidia_smi_csv(text: str) -> list[Gpu]:
    """``nvidia-smi --query-gpu=index,name,driver_version[,compute_cap] --format=csv,noheader``.

    >>> parse_nvidia_smi_csv("0, NVIDIA H100 80GB HBM3, 550.54.15, 9.0")[0].sm
    'sm_90'
    """
    gpus = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.lower().startswith("index"):
            continue
        # A GPU name may contain commas in theory: index first, driver (and capability) last.
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        cap = None
        if len(parts) >= 4 and _DRIVER_RE.fullmatch(parts[-2]):
            # "[N/A]" (MIG, some vGPUs), "[Not Supported]": the capability is unknown, not absent
            cap = parts[-1] if gpu_rules.compute_capability(parts[-1]) else None
            driver, name = parts[-2], ", ".join(parts[1:-2])
        else:
            driver, name = parts[-1], ", ".join(parts[1:-1])
        driver = driver if _DRIVER_RE.fullmatch(driver) else None
        gpus.append(Gpu(index=int(parts[0]), name=name, driver=driver, compute_cap=cap))
    return gpus


def parse_nvidia_smi_banner(text: str) -> str | None:
    """The driver version in plain ``nvidia-smi`` output ("Driver Version: 550.54.15")."""
    match = re.search(r"Driver Version:\s*(\d+(?:\.\d+)+)", text)
    return match.group(1) if match else None


def parse_proc_driver_version(text: str) -> str | None:
    """The kernel module's version from /proc/driver/nvidia/version (proprietary or open module).

    ``NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 ...``
    ``NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build ...``
    """
    for line in text.splitlines():
        if line.startswith("NVRM version:"):
            match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)\s", line + " ")
            if match:
                return match.group(1)
            found = re.findall(r"\s(\d{3,}\.\d+(?:\.\d+)?)\s", line + " ")
            return found[0] if found else None
    return None


# --------------------------------------------------------------------------- verdicts (pure)


def driver_verdict(driver: str, line: Line) -> tuple[str, str, str]:
    """(status, detail, fix) of one driver against one CUDA line."""
    full = gpu_rules.at_least(driver, line.min_driver)
    if full is None:
        return (WARN, f"driver {driver!r} is not a version dlbase can read (CUDA {line.cuda} needs >= "
                      f"{line.min_driver})", "check `nvidia-smi` on the host")
    if full:
        return OK, f"driver {driver} >= {line.min_driver} (CUDA {line.cuda}, full feature set)", ""
    if gpu_rules.at_least(driver, line.floor_driver):
        return (WARN, f"driver {driver} < {line.min_driver}: CUDA {line.cuda} runs through minor-version "
                      f"compatibility (>= {line.floor_driver}; no JIT of newer PTX)",
                f"for the full feature set install a driver >= {line.min_driver}")
    return (FAIL, f"driver {driver} is older than CUDA {line.cuda}'s floor {line.floor_driver} "
                  f"(full: {line.min_driver}); the NVIDIA runtime refuses these images",
            f"install an NVIDIA driver >= {line.min_driver} (at least {line.floor_driver})")


def arch_verdict(compute_cap: str, line: Line) -> tuple[str, str, str]:
    """(status, detail, fix) of one GPU's compute capability against a line's kernels.

    A cubin for sm_XY runs on sm_XZ with Z >= Y (same major), so an sm_89 GPU uses the
    sm_86 kernels; a newer major (sm_100 on a list ending at sm_90) has none.
    """
    cap = gpu_rules.compute_capability(compute_cap)
    if cap is None:
        return (WARN, f"compute capability {compute_cap!r} unknown (MIG or vGPU?); {line.name} has kernels for "
                      f"{', '.join(line.arch_list)}", "check `nvidia-smi --query-gpu=compute_cap --format=csv` on the host")
    sm = gpu_rules.sm_name(cap)
    verdict, via = gpu_rules.support(cap, line.arch_list)
    if verdict == gpu_rules.NATIVE and via is not None and gpu_rules.arch(via).minor == cap[1]:
        return OK, f"{sm} is in torch's {line.name} arch list" + (f" (as {via})" if via != sm else ""), ""
    if verdict == gpu_rules.NATIVE:
        return OK, f"{sm} runs torch's {via} kernels (same major, binary compatible)", ""
    if verdict == gpu_rules.PTX:
        return WARN, f"{sm}: no native kernels in {line.name}; the driver JIT-compiles {via} PTX", \
            "expect a slow first start; prefer a line built for this GPU"
    return (FAIL, f"{sm}: torch's {line.name} wheels carry no kernels for it "
                  f"(built for {', '.join(line.arch_list) or 'nothing listed'})",
            "use a CUDA line whose arch list includes this GPU (images/compat.yaml arch_lists)")


def _fmt_bytes(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def diagnose(facts: HostFacts, lines: list[Line], *, require_gpu: bool = False) -> list[HostCheck]:
    """The doctor's table from what the host said (pure)."""
    rows: list[HostCheck] = []
    rows.append(HostCheck("Docker daemon reachable", OK if facts.docker_ok else FAIL, facts.docker_detail,
                    "" if facts.docker_ok else START_HINT))
    no_gpu = FAIL if require_gpu else NO_GPU
    have_gpu = bool(facts.gpus) or facts.driver is not None
    if facts.gpus:
        names = "; ".join(f"{g.index}: {g.name}" + (f" ({g.sm})" if g.sm else "") for g in facts.gpus)
        rows.append(HostCheck("GPU", OK, f"{len(facts.gpus)} GPU(s) via {facts.driver_source}: {names}"))
    elif facts.driver:
        rows.append(HostCheck("GPU", WARN, f"NVIDIA driver {facts.driver} loaded ({facts.driver_source}) but no GPU listed"
                        + (f": {facts.gpu_note}" if facts.gpu_note else ""), "check `nvidia-smi` on the host"))
    else:
        rows.append(HostCheck("GPU", no_gpu, f"no GPU: {facts.gpu_note or 'no NVIDIA driver found'}",
                        "run on a host with an NVIDIA GPU and driver" if require_gpu else ""))
    # NVIDIA container runtime
    if facts.nvidia_runtime is None:
        rows.append(HostCheck("NVIDIA container runtime", FAIL if have_gpu or require_gpu else NO_GPU,
                        "unknown: the Docker daemon is not reachable", START_HINT))
    elif facts.nvidia_runtime:
        rows.append(HostCheck("NVIDIA container runtime", OK, "the daemon lists an nvidia runtime (`--gpus all` works)"))
    elif have_gpu or require_gpu:
        rows.append(HostCheck("NVIDIA container runtime", FAIL,
                        "the daemon has no nvidia runtime: containers cannot see the GPU", TOOLKIT_FIX))
    else:
        rows.append(HostCheck("NVIDIA container runtime", NO_GPU, "not installed (not needed without a GPU)"))
    # Driver per CUDA line
    for line in lines:
        check = f"driver for {line.name} (CUDA {line.cuda}; {len(line.variants)} variant(s))"
        if facts.driver is None:
            rows.append(HostCheck(check, no_gpu, f"no GPU driver; needs >= {line.min_driver} "
                                           f"(minor-version floor {line.floor_driver})",
                            "install an NVIDIA driver" if require_gpu else ""))
            continue
        status, detail, fix = driver_verdict(facts.driver, line)
        if status == FAIL:
            ok_lines = [other.name for other in lines if driver_verdict(facts.driver, other)[0] != FAIL]
            if ok_lines:
                fix += f", or use a {'/'.join(ok_lines)} variant"
        rows.append(HostCheck(check, status, detail, fix))
    # Compute capability per CUDA line
    for line in lines:
        check = f"compute capability vs torch {line.name} kernels"
        caps = [g for g in facts.gpus if g.compute_cap]
        if not caps:
            why = "no GPU" if not have_gpu else "the driver does not report the compute capability"
            status = no_gpu if not have_gpu else WARN
            if have_gpu:
                fix = "upgrade the driver (nvidia-smi >= 510 reports compute_cap)"
            else:
                fix = "run on a host with an NVIDIA GPU" if require_gpu else ""
            rows.append(HostCheck(check, status, f"{why}; {line.name} has kernels for {', '.join(line.arch_list)}", fix))
            continue
        verdicts = [(g, *arch_verdict(g.compute_cap, line)) for g in caps]
        worst = max(verdicts, key=lambda v: _RANK[v[1]])
        detail = "; ".join(f"GPU {g.index}: {d}" for g, _s, d, _f in verdicts) if len(verdicts) > 1 else worst[2]
        rows.append(HostCheck(check, worst[1], detail, worst[3]))
    # /dev/shm
    if facts.shm_bytes is None:
        rows.append(HostCheck("/dev/shm size", FAIL, "/dev/shm is not mounted",
                        "mount a tmpfs on /dev/shm (mount -t tmpfs -o size=16g tmpfs /dev/shm)"))
    else:
        size = _fmt_bytes(facts.shm_bytes)
        note = "used by --ipc=host containers; others get --shm-size (Docker's default: 64 MiB; dlbase run/verify: " + DEFAULT_SHM + ")"
        if facts.shm_bytes < SHM_MIN_BYTES:
            rows.append(HostCheck("/dev/shm size", FAIL, f"{size}: too small for DataLoader workers/NCCL with --ipc=host",
                            "mount -o remount,size=16g /dev/shm (or never use --ipc=host here)"))
        elif facts.shm_bytes < SHM_GOOD_BYTES:
            rows.append(HostCheck("/dev/shm size", WARN, f"{size}; {note}",
                            "for --ipc=host training: mount -o remount,size=16g /dev/shm"))
        else:
            rows.append(HostCheck("/dev/shm size", OK, f"{size}; {note}"))
    return rows


# --------------------------------------------------------------------------- the host (side effects)


def lines_of(project: Project, variants: list[str] | None = None) -> list[Line]:
    """The CUDA lines the matrix (or the named variants) uses, with their host needs."""
    found: dict[str, dict] = {}
    for variant in project.matrix.select(variants):
        try:
            spec = BuildSpec.of(project.compat, variant)
        except DlbaseError:
            continue  # `dlbase check` reports incompatible variants
        if spec.line.cuda is None:
            continue
        entry = found.setdefault(spec.line.name, {"spec": spec, "variants": []})
        entry["variants"].append(spec.name)
    return [Line(name=name, cuda=e["spec"].line.cuda, min_driver=e["spec"].min_driver,
                 floor_driver=e["spec"].minor_floor_driver, arch_list=tuple(e["spec"].arch_list),
                 variants=tuple(e["variants"])) for name, e in sorted(found.items())]


def _run(cmd: list[str], timeout: float = 20) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, str(exc)
    return proc.returncode, proc.stdout + proc.stderr


def gather(engine: Engine, *, which: Callable[[str], str | None] = shutil.which,
           run: Callable[[list[str]], tuple[int, str]] = _run, proc_version: Path = PROC_VERSION,
           shm_path: Path = SHM_PATH) -> HostFacts:
    """Ask the host: the daemon, the runtime, nvidia-smi (else /proc), /dev/shm."""
    facts = HostFacts(docker_ok=False)
    try:
        engine.ping()
        version = engine.version()
        facts.docker_ok = True
        facts.docker_detail = f"{engine.endpoint}: Docker {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"
        facts.nvidia_runtime = engine.has_nvidia_runtime()
    except DlbaseError as exc:
        facts.docker_detail = exc.message
    notes = []
    smi = which("nvidia-smi")
    if smi:
        rc, out = run([smi, *SMI_QUERY])
        if rc != 0 and "compute_cap" in out:
            rc, out = run([smi, *SMI_QUERY_OLD])
        if rc == 0:
            facts.gpus = parse_nvidia_smi_csv(out)
            drivers = sorted({g.driver for g in facts.gpus if g.driver})
            if drivers:
                facts.driver, facts.driver_source = drivers[0], "nvidia-smi"
        else:
            notes.append(f"nvidia-smi failed: {out.strip().splitlines()[0] if out.strip() else rc}")
    else:
        notes.append("nvidia-smi not found")
    if facts.driver is None:
        try:
            driver = parse_proc_driver_version(proc_version.read_text())
        except OSError:
            driver = None
            notes.append(f"{proc_version} absent")
        if driver:
            facts.driver, facts.driver_source = driver, str(proc_version)
    facts.gpu_note = "; ".join(notes)
    try:
        st = os.statvfs(shm_path)
        facts.shm_bytes = st.f_frsize * st.f_blocks
    except OSError:
        facts.shm_bytes = None
    return facts
