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
set by the notebook flavor). Everything else is a warning: CPU-only use is never blocked, and
an answer the host gives that is unknown ("[N/A]" for a MIG or vGPU compute capability) is
reported, never a stop. A preflight that fails in a way nobody foresaw says so in one line
and lets the command run (``main`` catches it, and the entrypoint starts the command on any
status but 78): a check must never be the reason a container does not start.

The rules for sizes, driver versions and arch lists are dlbase's (dlbase.core.sizes and
dlbase.core.gpu), copied here because this file cannot import dlbase; the table
tests/unit/data/shared_rules.json is run against both, so the copies cannot drift.

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

TYPE_CHECKING = False
if TYPE_CHECKING:  # no `typing` import at run time: every millisecond counts at container start
    from typing import Any, Callable

EXIT_STOP = 78  # sysexits EX_CONFIG: the container's configuration is wrong
DEFAULT_INFO = "/opt/dlbase/image.json"
DEFAULT_MIN_SHM = 1 << 30
# What the default minimum stands for, said in the row: 2 workers x prefetch 2 x 32 images of
# 3x640x640 float32 = 4 x 157 MB of tensors in shared memory at once.
SHM_EXAMPLE = "2 workers x prefetch 2 x batches of 32 images 640x640 float32 need ~630 MB"


# namedtuples, not dataclasses: `dataclasses` pulls in `inspect` and costs ~10 ms at every start.
# Row: one check; ``status`` is ok, warn, fail (stops the container) or skip.
Row = namedtuple("Row", "name status detail fix", defaults=("",))
# capability: (major, minor), or None when the host cannot say ("[N/A]" under MIG, some vGPUs)
Gpu = namedtuple("Gpu", "index name capability")
# What NVML (or nvidia-smi) says; driver None = no NVIDIA driver visible.
GpuFacts = namedtuple("GpuFacts", "driver gpus source error", defaults=((), "none", ""))
# The same query, in the same column order, as `dlbase doctor` (dlbase.verify.doctor.SMI_QUERY).
SMI_QUERY = ["--query-gpu=index,name,driver_version,compute_cap", "--format=csv,noheader"]
SMI_QUERY_OLD = ["--query-gpu=index,name,driver_version", "--format=csv,noheader"]  # drivers < 510
# What nvmlInit's codes mean for the person at the terminal (nvml.h: nvmlReturn_t).
NVML_ERRORS = {
    9: "the NVIDIA kernel driver is not loaded",
    12: "libnvidia-ml could not be loaded",
    18: "driver/library version mismatch: the host's driver was upgraded without a reboot",
}


# ----------------------------------------------------------------------------- facts


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    """(550, 54, 15) from "550.54.15"; None when the text does not start with a version
    (the rule of dlbase.core.gpu.version_tuple)."""
    digits = []
    for part in (text or "").lstrip().split("."):
        lead = ""
        for ch in part:
            if not ch.isdigit() or not ch.isascii():
                break
            lead += ch
        if not lead:
            break
        digits.append(int(lead))
        if lead != part:
            break
    return tuple(digits) or None


def at_least(version: str | None, floor: str | None) -> bool | None:
    """``version >= floor`` numerically; None when either is not a version (dlbase.core.gpu)."""
    have, need = version_tuple(version), version_tuple(floor)
    if have is None or need is None:
        return None
    return have >= need


def compute_capability(text: str | None) -> tuple[int, int] | None:
    """(9, 0) from "9.0"; None for "[N/A]", "[Not Supported]" and the rest (dlbase.core.gpu)."""
    major, dot, minor = (text or "").strip().partition(".")
    if dot and major.isdigit() and minor.isdigit() and major.isascii() and minor.isascii():
        return int(major), int(minor)
    return None


def parse_size(text: str) -> int:
    """'1g', '512m', '65536k', '8gb' or plain bytes -> bytes; ValueError otherwise
    (the grammar of dlbase.core.sizes.parse)."""
    body = text.strip().lower()
    if body.endswith("b"):
        body = body[:-1]
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(body[-1:], 1)
    number = body[:-1] if body[-1:] in ("k", "m", "g", "t") else body
    whole, dot, frac = number.partition(".")
    if not (whole.isdigit() and whole.isascii()) or (dot and not (frac.isdigit() and frac.isascii())):
        raise ValueError(f"{text!r} is not a size")
    try:
        return int(float(number) * mult)
    except OverflowError:
        raise ValueError(f"{text!r} is too large") from None


def human(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.0f} {unit}" if n % size == 0 or n >= 10 * size else f"{n / size:.1f} {unit}"
    return f"{n} B"


def load_info(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _load_nvml() -> ctypes.CDLL:
    return ctypes.CDLL("libnvidia-ml.so.1")


def _nvml(load: Callable[[], Any] = _load_nvml) -> GpuFacts:
    """Driver and GPUs through libnvidia-ml (mounted by the NVIDIA container runtime).

    ``load`` returns the library (a stand-in in the tests, with the answers of real hosts)."""
    try:
        lib = load()
    except OSError:
        return GpuFacts(driver=None, source="none")
    init = getattr(lib, "nvmlInit_v2", None) or lib.nvmlInit
    rc = init()
    if rc != 0:
        why = NVML_ERRORS.get(rc, "")
        return GpuFacts(driver=None, source="nvml", error=f"nvmlInit failed (NVML error {rc}{': ' + why if why else ''})")
    try:
        buf = ctypes.create_string_buffer(96)
        if lib.nvmlSystemGetDriverVersion(buf, ctypes.c_uint(96)) != 0:
            return GpuFacts(driver=None, source="nvml", error="nvmlSystemGetDriverVersion failed")
        driver = buf.value.decode(errors="replace")
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
            name = ctypes.create_string_buffer(96)
            if lib.nvmlDeviceGetName(handle, name, ctypes.c_uint(96)) != 0:
                name.value = b"?"
            major, minor = ctypes.c_int(0), ctypes.c_int(0)
            # NOT_SUPPORTED (3) on some vGPUs: the GPU is there, its capability unknown
            cap = None
            if lib.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor)) == 0:
                cap = (major.value, minor.value)
            gpus.append(Gpu(i, name.value.decode(errors="replace"), cap))
        return GpuFacts(driver=driver, gpus=tuple(gpus), source="nvml")
    finally:
        lib.nvmlShutdown()


def parse_smi_csv(text: str) -> tuple[list[Gpu], str | None]:
    """Rows of SMI_QUERY (or SMI_QUERY_OLD) -> [Gpu]; the driver of the last row, or None.

    The same reading as `dlbase doctor`'s parse_nvidia_smi_csv: index first, driver (and
    capability) last, since a GPU name may hold a comma; lines that are not rows (errors,
    "No devices were found") are skipped."""
    gpus, driver = [], None
    for raw in text.splitlines():
        parts = [p.strip() for p in raw.strip().split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        if len(parts) >= 4 and _looks_like_driver(parts[-2]):
            row_driver, name, cap = parts[-2], ", ".join(parts[1:-2]), compute_capability(parts[-1])
        else:
            row_driver, name, cap = parts[-1], ", ".join(parts[1:-1]), None
        if _looks_like_driver(row_driver):
            driver = row_driver
        gpus.append(Gpu(int(parts[0]), name, cap))
    return gpus, driver


def _looks_like_driver(text: str) -> bool:
    """"550.54.15", "570.26": three or more digits, a dot, digits (doctor's _DRIVER_RE)."""
    head, dot, rest = text.partition(".")
    return bool(dot) and len(head) >= 3 and head.isdigit() and all(p.isdigit() for p in rest.split(".")) \
        and rest.count(".") <= 1


def _nvidia_smi(run: Callable[[list[str]], tuple[int, str]] | None = None) -> GpuFacts:
    """nvidia-smi's answer to SMI_QUERY (retried without compute_cap on drivers < 510).

    ``run`` takes the argument list and returns (returncode, output); a stand-in in tests."""
    if run is None:
        import shutil  # only when NVML is absent; subprocess only when there is something to run

        exe = shutil.which("nvidia-smi")
        if exe is None:
            return GpuFacts(driver=None)
        run = _runner(exe)
    rc, out = run(SMI_QUERY)
    if rc != 0 and "compute_cap" in out:
        rc, out = run(SMI_QUERY_OLD)
    if rc != 0:
        first = out.strip().splitlines()[0] if out.strip() else f"exit {rc}"
        return GpuFacts(driver=None, source="nvidia-smi", error=f"nvidia-smi failed: {first}")
    gpus, driver = parse_smi_csv(out)
    return GpuFacts(driver=driver, gpus=tuple(gpus), source="nvidia-smi")


def _runner(exe: str) -> Callable[[list[str]], tuple[int, str]]:
    import subprocess

    def run(args: list[str]) -> tuple[int, str]:
        try:
            proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as exc:
            return 127, str(exc)
        return proc.returncode, proc.stdout + proc.stderr
    return run


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
    enough = at_least(facts.driver, floor)
    if enough is None:
        return Row("driver", "warn", f"driver {facts.driver!r} or floor {floor!r} is not a version; not compared",
                   "check `nvidia-smi` on the host")
    if not enough:
        return Row("driver", "fail" if require_gpu else "warn",
                   f"driver {facts.driver} < {floor}, the floor of {line} (CUDA {info.get('cuda', '?')}): "
                   "CUDA will not initialise", f"upgrade the host driver to >= {floor}, or use an image of an "
                   "older CUDA line")
    return Row("driver", "ok", f"driver {facts.driver} >= {floor} ({line} floor)")


def arch(entry: str) -> tuple[str, int, int, str] | None:
    """'sm_90a' -> ('sm', 9, 0, 'a'); None when not an arch list entry (dlbase.core.gpu.arch)."""
    kind, _, rest = entry.strip().partition("_")
    suffix = rest[-1:] if rest[-1:] in ("a", "f") else ""
    num = rest[:-1] if suffix else rest
    if kind not in ("sm", "compute") or len(num) < 2 or not (num.isdigit() and num.isascii()):
        return None
    return kind, int(num[:-1]), int(num[-1]), suffix


def _runs_on(entry: tuple[str, int, int, str], cap: tuple[int, int]) -> bool:
    kind, major, minor, suffix = entry
    if suffix == "a":
        return (major, minor) == cap
    if kind == "sm" or suffix == "f":
        return major == cap[0] and minor <= cap[1]
    return (major, minor) <= cap


def arch_support(cap: tuple[int, int], arch_list: list[str]) -> tuple[str, str | None]:
    """('native', best sm entry) when a cubin runs on ``cap`` (same major, built minor <= GPU
    minor; an ``a`` entry only on its exact capability), ('ptx', newest compute entry) when
    only the driver's JIT helps, ('no', None) else. The rule of dlbase.core.gpu.support."""
    parsed = [a for a in (arch(e) for e in arch_list) if a is not None]
    cubins = [a for a in parsed if a[0] == "sm" and _runs_on(a, cap)]
    if cubins:
        best = max(cubins, key=lambda a: (a[2], a[3] == ""))
        return "native", f"sm_{best[1]}{best[2]}{best[3]}"
    ptx = [a for a in parsed if a[0] == "compute" and _runs_on(a, cap)]
    if ptx:
        best = max(ptx, key=lambda a: (a[1], a[2]))
        return "ptx", f"compute_{best[1]}{best[2]}{best[3]}"
    return "no", None


def check_arch(facts: GpuFacts, info: dict, require_gpu: bool) -> Row:
    arch_list = list(info.get("arch_list") or [])
    if facts.driver is None or not facts.gpus:
        return Row("gpu arch", "skip", "no GPU visible" if facts.driver is None else "driver but no GPU listed")
    if not arch_list:
        return Row("gpu arch", "warn", "image.json names no arch list", "rebuild the image with a current dlbase")
    bad, jit, good, unknown = [], [], [], []
    for gpu in facts.gpus:
        if gpu.capability is None:
            unknown.append(f"GPU {gpu.index} {gpu.name}")
            continue
        cc = f"{gpu.capability[0]}.{gpu.capability[1]}"
        verdict = arch_support(gpu.capability, arch_list)[0]
        (good if verdict == "native" else jit if verdict == "ptx" else bad).append(f"GPU {gpu.index} {gpu.name} (sm {cc})")
    built = " ".join(arch_list)
    if unknown and not (bad or jit):
        # Unknown is not a failure: a MIG slice or a vGPU of a supported GPU runs fine.
        return Row("gpu arch", "warn", f"{', '.join(unknown)}: the driver reports no compute capability "
                   f"(MIG or vGPU?); not checked against {built}" + (f"; {', '.join(good)} ok" if good else ""),
                   "check `nvidia-smi --query-gpu=compute_cap --format=csv` on the host")
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
        minimum = DEFAULT_MIN_SHM  # the shm row is still worth having; the bad value is a typo
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
    """0 = start the command, 78 = stop. Anything unforeseen (an answer of a host nobody
    has seen yet) is one line on stderr and 0: the check must never stop a container that
    would have run."""
    try:
        return _main(env)
    except Exception as exc:  # noqa: BLE001 - the whole point: nothing here may stop the command
        try:
            sys.stderr.write(f"dlbase preflight: skipped, it failed unexpectedly ({type(exc).__name__}: {exc}); "
                             "the command runs. Please report this line.\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - stderr closed: still let the command run
            pass
        return 0


def _main(env: dict[str, str] | None) -> int:
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
