"""The image's start-up preflight: the host traps a researcher hits, caught before the command runs.

Run by /opt/dlbase/entrypoint.sh (under tini) before every command, so it must be cheap:
plain standard-library Python, started with ``python -I -S``, no torch and no dlbase import
(dlbase is not in the image). It reads the facts the build wrote (/opt/dlbase/image.json:
the CUDA line's driver floor and the build's GPU arch list) and checks, one row each:

- driver:    the host's NVIDIA driver against the image's CUDA line floor (NVML via ctypes,
             nvidia-smi as a fallback);
- gpu arch:  every visible GPU's compute capability against the build's arch list;
- shm:       the size of /dev/shm against what a DataLoader with workers needs (Docker's
             default 64 MB kills 640 px batches with "worker exited unexpectedly");
- workspace: /workspace and every folder mounted below it writable by the running user.

Every failing row prints a one-line fix. Exit status: 0 = go on, 78 (EX_CONFIG) = stop.
It stops only for what would make the command fail for sure: a GPU problem when
DLBASE_REQUIRE_GPU=1, a workspace the command must write to (DLBASE_REQUIRE_WRITABLE_WORKSPACE=1,
set by the notebook flavor). Everything else is a warning: CPU-only use is never blocked.

Environment: DLBASE_SKIP_PREFLIGHT=1 (the entrypoint skips this), DLBASE_PREFLIGHT=quiet|verbose
(default: print the rows only when one is not ok), DLBASE_MIN_SHM (bytes or 1g/512m, default 1g),
DLBASE_IMAGE_INFO (path of image.json), DLBASE_WORKSPACE (default /workspace).
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
from collections import namedtuple

EXIT_STOP = 78  # sysexits EX_CONFIG: the container's configuration is wrong
DEFAULT_INFO = "/opt/dlbase/image.json"
DEFAULT_MIN_SHM = 1 << 30
# What the default minimum stands for, said in the row: 2 workers x prefetch 2 x 32 images of
# 3x640x640 float32 = 4 x 157 MB of tensors in shared memory at once.
SHM_EXAMPLE = "2 workers x prefetch 2 x batches of 32 images 640x640 float32 need ~630 MB"


# namedtuples, not dataclasses: `dataclasses` pulls in `inspect` and costs ~10 ms at every start.
# Row: one check; ``status`` is ok, warn, fail (stops the container) or skip.
Row = namedtuple("Row", "name status detail fix", defaults=("",))
Gpu = namedtuple("Gpu", "index name capability")
# What NVML (or nvidia-smi) says; driver None = no NVIDIA driver visible.
GpuFacts = namedtuple("GpuFacts", "driver gpus source error", defaults=((), "none", ""))


# ----------------------------------------------------------------------------- facts


def version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.strip().split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def parse_size(text: str) -> int:
    """'1g', '512m', '65536k' or plain bytes -> bytes."""
    text = text.strip().lower().rstrip("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in "kmgt" else text
    return int(float(number) * mult)


def human(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.0f} {unit}" if n % size == 0 or n >= 10 * size else f"{n / size:.1f} {unit}"
    return f"{n} B"


def load_info(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _nvml() -> GpuFacts:
    """Driver and GPUs through libnvidia-ml (mounted by the NVIDIA container runtime)."""
    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return GpuFacts(driver=None, source="none")
    init = getattr(lib, "nvmlInit_v2", None) or lib.nvmlInit
    rc = init()
    if rc != 0:
        return GpuFacts(driver=None, source="nvml", error=f"nvmlInit failed (NVML error {rc})")
    try:
        buf = ctypes.create_string_buffer(96)
        if lib.nvmlSystemGetDriverVersion(buf, ctypes.c_uint(96)) != 0:
            return GpuFacts(driver=None, source="nvml", error="nvmlSystemGetDriverVersion failed")
        driver = buf.value.decode()
        count = ctypes.c_uint(0)
        get_count = getattr(lib, "nvmlDeviceGetCount_v2", None) or lib.nvmlDeviceGetCount
        if get_count(ctypes.byref(count)) != 0:
            return GpuFacts(driver=driver, source="nvml", error="nvmlDeviceGetCount failed")
        gpus = []
        get_handle = getattr(lib, "nvmlDeviceGetHandleByIndex_v2", None) or lib.nvmlDeviceGetHandleByIndex
        for i in range(count.value):
            handle = ctypes.c_void_p()
            if get_handle(ctypes.c_uint(i), ctypes.byref(handle)) != 0:
                continue
            major, minor = ctypes.c_int(0), ctypes.c_int(0)
            if lib.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor)) != 0:
                continue
            name = ctypes.create_string_buffer(96)
            lib.nvmlDeviceGetName(handle, name, ctypes.c_uint(96))
            gpus.append(Gpu(i, name.value.decode(errors="replace"), (major.value, minor.value)))
        return GpuFacts(driver=driver, gpus=tuple(gpus), source="nvml")
    finally:
        lib.nvmlShutdown()


def _nvidia_smi() -> GpuFacts:
    import shutil  # only when NVML is absent; subprocess only when there is something to run

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return GpuFacts(driver=None)
    import subprocess

    try:
        out = subprocess.run([exe, "--query-gpu=index,name,compute_cap,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return GpuFacts(driver=None, source="nvidia-smi", error=f"nvidia-smi failed: {exc}")
    gpus, driver = [], None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        cap = version_tuple(parts[2])
        gpus.append(Gpu(int(parts[0]), parts[1], (cap[0], cap[1] if len(cap) > 1 else 0)))
        driver = parts[3]
    return GpuFacts(driver=driver, gpus=tuple(gpus), source="nvidia-smi")


def gpu_facts() -> GpuFacts:
    facts = _nvml()
    if facts.driver is None and not facts.error:
        facts = _nvidia_smi()
    return facts


def shm_size(path: str = "/dev/shm") -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_blocks * st.f_frsize


def mounts_below(root: str, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points at or below ``root`` (a bind-mounted ./notebooks shows up here)."""
    found = []
    try:
        with open(mountinfo, encoding="utf-8") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 4:
                    point = fields[4].replace("\\040", " ")
                    if point == root or point.startswith(root.rstrip("/") + "/"):
                        found.append(point)
    except OSError:
        pass
    return sorted(set(found))


# ----------------------------------------------------------------------------- checks


def check_driver(facts: GpuFacts, info: dict, require_gpu: bool) -> Row:
    line = info.get("cuda_line", "?")
    floor = info.get("minor_floor_driver")
    if facts.driver is None:
        detail = f"no NVIDIA driver visible ({facts.error or 'CPU only'})"
        if require_gpu:
            return Row("driver", "fail", detail, "run with `--gpus all` on a host with the NVIDIA container "
                       "toolkit (or `dlbase run`), or unset DLBASE_REQUIRE_GPU")
        return Row("driver", "skip", detail)
    if not floor:
        return Row("driver", "warn", f"driver {facts.driver}; image.json names no driver floor",
                   "rebuild the image with a current dlbase")
    if version_tuple(facts.driver) < version_tuple(floor):
        return Row("driver", "fail" if require_gpu else "warn",
                   f"driver {facts.driver} < {floor}, the floor of {line} (CUDA {info.get('cuda', '?')}): "
                   "CUDA will not initialise", f"upgrade the host driver to >= {floor}, or use an image of an "
                   "older CUDA line")
    return Row("driver", "ok", f"driver {facts.driver} >= {floor} ({line} floor)")


def arch_supported(cap: tuple[int, int], arch_list: list[str]) -> str:
    """'native' (a cubin runs: same major, built minor <= GPU minor), 'ptx' (only JIT from the
    newest arch's PTX, when the list has compute_XY), or 'no'."""
    built = []
    for arch in arch_list:
        kind, _, num = arch.partition("_")
        if num.isdigit() and len(num) >= 2:
            built.append((kind, (int(num[:-1]), int(num[-1]))))
    if any(k == "sm" and v[0] == cap[0] and v[1] <= cap[1] for k, v in built):
        return "native"
    if any(k == "compute" and v <= cap for k, v in built):
        return "ptx"
    return "no"


def check_arch(facts: GpuFacts, info: dict, require_gpu: bool) -> Row:
    arch_list = list(info.get("arch_list") or [])
    if facts.driver is None or not facts.gpus:
        return Row("gpu arch", "skip", "no GPU visible" if facts.driver is None else "driver but no GPU listed")
    if not arch_list:
        return Row("gpu arch", "warn", "image.json names no arch list", "rebuild the image with a current dlbase")
    bad, jit, good = [], [], []
    for gpu in facts.gpus:
        cc = f"{gpu.capability[0]}.{gpu.capability[1]}"
        verdict = arch_supported(gpu.capability, arch_list)
        (good if verdict == "native" else jit if verdict == "ptx" else bad).append(f"GPU {gpu.index} {gpu.name} (sm {cc})")
    built = " ".join(arch_list)
    if bad:
        return Row("gpu arch", "fail" if require_gpu else "warn",
                   f"{', '.join(bad)} not in the build's arch list ({built}): kernels will not run",
                   "use an image of a newer CUDA line built for this GPU (see images/compat.yaml arch_lists)")
    if jit:
        return Row("gpu arch", "warn", f"{', '.join(jit)} only through PTX JIT ({built}): slow first start",
                   "use an image built for this GPU's arch")
    return Row("gpu arch", "ok", f"{', '.join(good)} in {built}")


def check_shm(size: int | None, minimum: int) -> Row:
    if size is None:
        return Row("shm", "warn", "/dev/shm is missing", "run with `--shm-size 8g` or `--ipc=host`")
    if size < minimum:
        return Row("shm", "warn", f"/dev/shm is {human(size)} < {human(minimum)}: DataLoader workers will die "
                   f"(\"worker exited unexpectedly\"); {SHM_EXAMPLE}",
                   "run with `--shm-size 8g` or `--ipc=host` (dlbase run does), or keep num_workers=0")
    return Row("shm", "ok", f"/dev/shm {human(size)} >= {human(minimum)}")


def check_workspace(root: str, stop: bool) -> Row:
    if not os.path.isdir(root):
        return Row("workspace", "skip", f"{root} does not exist")
    uid, gid = os.getuid(), os.getgid()
    bad, read_only = [], False
    for path in [root, *[m for m in mounts_below(root) if m != root and os.path.isdir(m)]]:
        if not os.access(path, os.W_OK):
            try:
                st = os.stat(path)
                owner = f"owner {st.st_uid}:{st.st_gid}, mode {st.st_mode & 0o7777:o}"
            except OSError:
                owner = "owner unknown"
            ro = _read_only(path)
            read_only = read_only or ro
            bad.append(f"{path} ({'read-only mount' if ro else owner})")
    if bad:
        fix = ("mount it read-write (drop `:ro` from `-v`)" if read_only else
               "run as the folder's owner: `docker run -u $(id -u):$(id -g) ...` (`dlbase run` does)")
        return Row("workspace", "fail" if stop else "warn",
                   f"not writable by uid {uid}:{gid}: {', '.join(bad)}", fix)
    return Row("workspace", "ok", f"{root} writable by uid {uid}:{gid}")


def _read_only(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def run_checks(env: dict[str, str] | None = None, facts: GpuFacts | None = None,
               shm: int | None | str = "probe") -> list[Row]:
    env = dict(os.environ if env is None else env)
    info = load_info(env.get("DLBASE_IMAGE_INFO", DEFAULT_INFO))
    require_gpu = env.get("DLBASE_REQUIRE_GPU", "") == "1"
    facts = gpu_facts() if facts is None else facts
    try:
        minimum = parse_size(env.get("DLBASE_MIN_SHM", "")) if env.get("DLBASE_MIN_SHM") else DEFAULT_MIN_SHM
    except ValueError:
        minimum = DEFAULT_MIN_SHM
    return [
        check_driver(facts, info, require_gpu),
        check_arch(facts, info, require_gpu),
        check_shm(shm_size() if shm == "probe" else shm, minimum),  # type: ignore[arg-type]
        check_workspace(env.get("DLBASE_WORKSPACE", "/workspace"),
                        env.get("DLBASE_REQUIRE_WRITABLE_WORKSPACE", "") == "1"),
    ]


def render(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        lines.append(f"dlbase preflight: {row.status:<4} {row.name:<9} {row.detail}")
        if row.fix and row.status in ("warn", "fail"):
            lines.append(f"dlbase preflight:      fix: {row.fix}")
    if any(r.status == "fail" for r in rows):
        lines.append("dlbase preflight: stopped before the command; fix the rows above "
                     "(or set DLBASE_SKIP_PREFLIGHT=1 to start anyway)")
    return lines


def main(env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    mode = env.get("DLBASE_PREFLIGHT", "auto")
    rows = run_checks(env)
    noisy = any(r.status in ("warn", "fail") for r in rows)
    if mode == "verbose" or (mode != "quiet" and noisy) or (mode == "quiet" and any(r.status == "fail" for r in rows)):
        shown = rows if mode == "verbose" else [r for r in rows if r.status in ("warn", "fail")]
        sys.stderr.write("\n".join(render(shown)) + "\n")
        sys.stderr.flush()
    return EXIT_STOP if any(r.status == "fail" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
