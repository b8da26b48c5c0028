"""`dlbase bench data`: the seed's data-pipeline claims, measured inside the image and on the host.

The measuring script is bench_data.py of the in-image suite (dlbase.suites, tests/image in the
repository): it ships inside every image and imports nothing from dlbase, so the same file
runs in both places. This module copies dlbase's copy into the container (so an image built
before the script existed can be measured too),
runs it once there and, when a host Python has torch, torchvision, albumentations and OpenCV,
once on the host in the same run, one after the other so they never share the CPU. It then
computes the in-image/host speed ratio per pipeline (want >= 0.95) and writes JSON, a markdown
table and a PNG plot.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from dlbase import suites
from dlbase.core.errors import DlbaseError, InvalidInput, Missing
from dlbase.core.imageref import labels_of
from dlbase.define.project import Project
from dlbase.engine import Engine, launcher
from dlbase.define import labels as image_labels

SCRIPT_FILES = ("bench_data.py", "seed_pipelines.py", "loader_utils.py", "known_bugs.py")  # and what they import
IN_CONTAINER = "/tmp/dlbase-bench"
WANT_RATIO = 0.95
SEED_CLAIM_MS = (1.0, 5.0)
HOST_IMPORTS = "import torch, torchvision, albumentations, cv2, numpy"
#: The label every dlbase image carries (inherited by images built FROM one).
IMAGE_LABEL = image_labels.VARIANT
#: The host run of the benchmark is stopped after this long (a full run takes minutes).
HOST_TIMEOUT_S = 1800


@dataclass
class DataBench:
    image: str
    image_id: str
    in_image: dict
    host: dict | None
    host_reason: str | None
    started_at: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    def ratios(self) -> dict[str, float | None]:
        """Per pipeline: host ms / in-image ms (1.0 = as fast; >= 0.95 wanted)."""
        if not self.host:
            return {}
        out: dict[str, float | None] = {}
        key = self.ratio_basis()
        for name, row in (self.in_image.get("pipelines") or {}).items():
            host_row = (self.host.get("pipelines") or {}).get(name)
            out[name] = round(host_row[key] / row[key], 3) if host_row and row.get(key) else None
        return out

    def ratio_basis(self) -> str:
        """CPU time when both sides measured it (load on a shared machine inflates wall time)."""
        rows = list((self.in_image.get("pipelines") or {}).values()) + list(((self.host or {}).get("pipelines") or {}).values())
        return "cpu_median_ms" if rows and all("cpu_median_ms" in r for r in rows) else "median_ms"

    def same_packages(self) -> bool | None:
        if not self.host:
            return None
        strip = lambda v: {k: x for k, x in (v or {}).items() if k != "python"}  # noqa: E731
        return strip(self.in_image.get("versions")) == strip(self.host.get("versions"))

    def to_dict(self) -> dict:
        return {"kind": "dlbase.bench.data", **asdict(self), "ratios": self.ratios(), "ratio_basis": self.ratio_basis(),
                "want_ratio": WANT_RATIO, "same_packages": self.same_packages(), "seed_claim_ms": SEED_CLAIM_MS}


def require_dlbase_image(inspect: dict, image: str) -> None:
    """The benchmark needs what a dlbase image has (its Python environment, /tmp, the seed's
    packages); another image fails deep inside the daemon ("Could not find the file /tmp")."""
    if IMAGE_LABEL not in labels_of(inspect):
        raise InvalidInput(f"{image} is not a dlbase image of a variant (it has no {IMAGE_LABEL} label): "
                           "bench data measures the packages such an image carries",
                           hint="name a variant (`dlbase check` lists them; build it with `dlbase build VARIANT`) "
                                "or an image built by dlbase or FROM one")


def _script_files(project: Project) -> dict[str, bytes]:
    src = suites.image_dir()
    files = {name: (src / name).read_bytes() for name in SCRIPT_FILES if (src / name).is_file()}
    missing = [n for n in SCRIPT_FILES if n not in files]
    if missing:
        raise Missing(f"the in-image suite of the installed dlbase ({src}) lacks {', '.join(missing)}",
                      hint=suites.INSTALL_HINT)
    preflight = project.root / "runtime" / "preflight.py"
    if preflight.is_file():
        files["preflight.py"] = preflight.read_bytes()
    return files


def _args(quick: bool, workers: str | None) -> list[str]:
    args = ["--quick"] if quick else []
    return args + (["--workers", workers] if workers else [])


def _parse(stdout: bytes, where: str, tail: list[str]) -> dict:
    for line in reversed(stdout.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    raise DlbaseError(f"the benchmark {where} printed no result", details=tail[-15:])


def host_python_problem(python: str) -> str | None:
    """None when ``python`` can import what the benchmark needs, else why not (one line)."""
    try:
        proc = subprocess.run([python, "-c", HOST_IMPORTS], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})
    except OSError as exc:
        return f"{python}: {exc.strerror or exc}"
    except subprocess.TimeoutExpired:
        return f"{python}: importing the packages took over 120 s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["import failed"])[-1]
        return f"{python} cannot import the benchmark's packages ({last})"
    return None


def best_of(rounds: list[dict]) -> dict:
    """One result from several rounds of the same side: per pipeline and transform the round
    with the lowest median, per worker count the highest throughput. Other people's work on a
    shared machine only ever slows a round down, so the best round is the closest to the truth."""
    if len(rounds) == 1:
        return rounds[0]
    best = json.loads(json.dumps(rounds[-1]))
    for name in best.get("pipelines") or {}:
        best["pipelines"][name] = min((r["pipelines"][name] for r in rounds),
                                      key=lambda row: row.get("cpu_median_ms", row["median_ms"]))
    versus = best.get("versus") or {}
    if "skipped" not in versus:
        for name in versus:
            rows = [r["versus"][name] for r in rounds]
            a = min(row["albumentations_ms"] for row in rows)
            v = min(row["torchvision_v2_ms"] for row in rows)
            versus[name] = {"albumentations_ms": a, "torchvision_v2_ms": v,
                            "torchvision_over_albumentations": round(v / a, 3) if a else None}
    loader = best.get("loader") or {}
    if loader.get("rows"):
        by_workers = {}
        for r in rounds:
            for row in r["loader"]["rows"]:
                cur = by_workers.get(row["num_workers"])
                if cur is None or row["images_per_s"] > cur["images_per_s"]:
                    by_workers[row["num_workers"]] = row
        rows = [dict(by_workers[k]) for k in sorted(by_workers)]
        base = next((row["steady_images_per_s"] for row in rows if row["num_workers"] == 0), None)
        for row in rows:
            rate = row["steady_images_per_s"]
            row["efficiency"] = round(rate / (base * max(row["num_workers"], 1)), 3) if base and rate else None
        loader["rows"] = rows
    pre = [r["preflight"] for r in rounds if r.get("preflight")]
    if pre:
        best["preflight"] = min(pre, key=lambda p: p["preflight_ms"]["median_ms"])
    best["loadavg_before"] = [r.get("loadavg_before") for r in rounds]
    best["loadavg_after"] = [r.get("loadavg_after") for r in rounds]
    best["rounds"] = len(rounds)
    return best


def _run_image(engine: Engine, image: str, files: dict[str, bytes], args: list[str], shm_size: str,
               labels: dict[str, str], say: Callable[[str], None]) -> dict:
    cmd = ["python", f"{IN_CONTAINER}/bench_data.py", *args]
    if "preflight.py" in files:
        cmd += ["--preflight", f"{IN_CONTAINER}/preflight.py"]
    res = launcher.run_captured(engine, image, cmd, files=files, files_dir=IN_CONTAINER, labels=labels,
                                shm_size=shm_size, environment={"DLBASE_SKIP_PREFLIGHT": "1"},
                                on_stderr_line=lambda line: say(f"  image: {line}"))
    if res.exit_code != 0:
        raise DlbaseError(f"the benchmark in {image} failed (exit {res.exit_code})", details=res.stderr_tail)
    return _parse(res.stdout, f"in {image}", res.stderr_tail)


def run_child(cmd: list[str], *, timeout: float, what: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a child, both pipes read together to the end
    (communicate: no deadlock however much either side prints) within ``timeout`` seconds.
    The child gets a process group of its own, so on a timeout or Ctrl-C it is killed with
    everything it started (DataLoader workers) and nothing keeps the pipes open."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as exc:  # TimeoutExpired, KeyboardInterrupt, SIGTERM turned into an exception
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            tail = (err or "").splitlines()[-15:]
            raise DlbaseError(f"{what} did not finish within {timeout:.0f} s and was stopped", details=tail,
                              hint="run with --quick, or measure the image only with --no-host") from None
        raise
    return proc.returncode, out, err


def _run_host(python: str, args: list[str], say: Callable[[str], None], timeout: float = HOST_TIMEOUT_S) -> dict:
    script = suites.image_dir() / "bench_data.py"
    code, stdout, stderr = run_child([python, str(script), *args, "--parts", "pipelines,versus,loader"],
                                     timeout=timeout, what="the benchmark on the host")
    lines = stderr.splitlines()
    for line in lines:  # its progress, shown when it ends (both pipes are read together)
        say(f"  host: {line}")
    if code != 0:
        raise DlbaseError(f"the benchmark on the host failed (exit {code})", details=lines[-20:])
    return _parse(stdout.encode(), "on the host", lines[-20:])


def measure(project: Project, engine: Engine, image: str, *, host_python: str | None, host: bool = True,
            quick: bool = False, workers: str | None = None, rounds: int = 1, shm_size: str = launcher.DEFAULT_SHM,
            labels: dict[str, str] | None = None, say: Callable[[str], None] = lambda _m: None) -> DataBench:
    """Run the benchmark in ``image`` and, when possible, with ``host_python`` (None: this
    process's interpreter): ``rounds`` times, alternating, never both at once."""
    if rounds < 1:
        raise InvalidInput(f"--rounds {rounds}: at least 1", hint="e.g. --rounds 2")
    inspect = engine.inspect_image(image)
    require_dlbase_image(inspect, image)
    files = _script_files(project)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.monotonic()
    python = host_python or sys.executable
    reason = host_python_problem(python) if host else "--no-host"
    args = _args(quick, workers)
    image_rounds, host_rounds = [], []
    for n in range(rounds):
        say(f"round {n + 1}/{rounds}: in the image {image}")
        image_rounds.append(_run_image(engine, image, files, args, shm_size, labels or {}, say))
        if reason is None:
            say(f"round {n + 1}/{rounds}: on the host ({python})")
            host_rounds.append(_run_host(python, args, say))
    bench = DataBench(image=image, image_id=inspect.get("Id", ""), in_image=best_of(image_rounds),
                      host=best_of(host_rounds) if host_rounds else None, host_reason=reason,
                      started_at=started, seconds=round(time.monotonic() - t0, 1))
    if host_rounds and not bench.same_packages():
        bench.notes.append("host and image versions differ: the ratio compares different packages")
    if quick:
        bench.notes.append("--quick: few samples, a smoke run rather than a measurement")
    return bench


# ----------------------------------------------------------------------------- output


def _title(bench: DataBench) -> str:
    v = bench.in_image.get("versions") or {}
    load = bench.in_image.get("loadavg_before")
    load = max(load) if isinstance(load, list) and load else load
    return (f"torch {v.get('torch')} / torchvision {v.get('torchvision')} / albumentations {v.get('albumentations')} "
            f"/ OpenCV {v.get('opencv-python-headless')} - {bench.in_image.get('cpu')}, "
            f"{bench.in_image.get('cores')} cores" + (f" (load average up to {load})" if load is not None else ""))


def markdown(bench: DataBench) -> str:
    ratios = bench.ratios()
    host_p = (bench.host or {}).get("pipelines") or {}
    key = bench.ratio_basis()
    cpu = key == "cpu_median_ms"
    lines = [f"**{_title(bench)}**", "",
             "| pipeline (ms per image, 1 thread) | image CPU median | image wall median / p90 | host CPU median "
             f"| host/image speed ({'CPU' if cpu else 'wall'}) | seed says 1-5 ms |",
             "|---|---|---|---|---|---|"]
    for name, row in (bench.in_image.get("pipelines") or {}).items():
        h = host_p.get(name)
        ratio = ratios.get(name)
        verdict = "" if ratio is None else (" ok" if ratio >= WANT_RATIO else " below 0.95")
        host_ms = f"{h.get(key, h['median_ms']):.2f}" if h else "not measured"
        speed = f"{ratio:.3f}{verdict}" if ratio is not None else "-"
        mine = row.get(key, row["median_ms"])
        claim = "yes" if mine <= SEED_CLAIM_MS[1] else "no"
        lines.append(f"| {name} | {mine:.2f} | {row['median_ms']:.2f} / {row['p90_ms']:.2f} | {host_ms} | {speed} | {claim} |")
    versus = bench.in_image.get("versus") or {}
    if versus and "skipped" not in versus:
        lines += ["", "| transform (in the image, CPU ms median) | Albumentations | torchvision v2 | v2 / Albumentations |",
                  "|---|---|---|---|"]
        for name, row in versus.items():
            lines.append(f"| {name} | {row['albumentations_ms']:.3f} | {row['torchvision_v2_ms']:.3f} | "
                         f"{row['torchvision_over_albumentations']} |")
    loader = bench.in_image.get("loader") or {}
    if loader.get("rows"):
        host_rows = {r["num_workers"]: r for r in (((bench.host or {}).get("loader") or {}).get("rows") or [])}
        lines += ["", f"| num_workers (batch {loader['batch_size']}, detection 640 px, ragged collate) | images/s "
                      "| after 1st batch | scaling efficiency | host images/s |", "|---|---|---|---|---|"]
        for row in loader["rows"]:
            h = host_rows.get(row["num_workers"])
            lines.append(f"| {row['num_workers']} | {row['images_per_s']} | {row['steady_images_per_s']} | "
                         f"{row['efficiency']} | {h['images_per_s'] if h else 'not measured'} |")
    pre = bench.in_image.get("preflight")
    if pre:
        lines += ["", f"Preflight (`python -I -S preflight.py`, {pre['runs']} runs): median "
                      f"{pre['preflight_ms']['median_ms']:.1f} ms, p90 {pre['preflight_ms']['p90_ms']:.1f} ms "
                      f"(bare interpreter start {pre['python_startup_ms']['median_ms']:.1f} ms)"
                      + (f"; CPU {pre['preflight_ms']['cpu_mean_ms']:.1f} ms per run" if "cpu_mean_ms" in pre["preflight_ms"]
                         else "") + "."]
    if bench.host is None:
        lines += ["", f"Host: not measured ({bench.host_reason})."]
    load = [bench.in_image.get("loadavg_before"), (bench.host or {}).get("loadavg_before")]
    load = [x for x in load if x is not None]
    if load:
        lines += ["", f"Machine load (1-min load average at the start of each run) on {bench.in_image.get('cores')} "
                      f"cores: image {bench.in_image.get('loadavg_before')}"
                      + (f", host {bench.host.get('loadavg_before')}" if bench.host else "")
                      + f"; best of {bench.in_image.get('rounds', 1)} round(s)."]
    lines += [f"Note: {n}" for n in bench.notes]
    return "\n".join(lines) + "\n"


def plot(bench: DataBench, path: Path) -> Path:
    """Throughput against workers, and ms per pipeline against the seed's claim. Raises
    Missing when matplotlib is absent (pip install 'dlbase[bench]')."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from dlbase.core.errors import Missing

        raise Missing("matplotlib is not installed: no PNG", hint="pip install 'dlbase[bench]'") from None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    for label, data, style in (("in image", bench.in_image, "o-"), ("host", bench.host, "s--")):
        rows = ((data or {}).get("loader") or {}).get("rows") or []
        if rows:
            ax1.plot([r["num_workers"] for r in rows], [r["images_per_s"] for r in rows], style, label=f"{label}, epoch")
            steady = [(r["num_workers"], r["steady_images_per_s"]) for r in rows if r["steady_images_per_s"]]
            if steady:
                ax1.plot(*zip(*steady), style, alpha=0.45, label=f"{label}, after 1st batch")
    from matplotlib.ticker import MaxNLocator

    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("DataLoader num_workers")
    ax1.set_ylabel("images / s (640 px detection, batch 32)")
    ax1.set_title("DataLoader throughput")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    names = list((bench.in_image.get("pipelines") or {}).keys())
    ys = list(range(len(names)))
    off = 0.2 if bench.host else 0.0
    key = bench.ratio_basis()
    p90_key = "cpu_p90_ms" if key == "cpu_median_ms" else "p90_ms"
    img = [bench.in_image["pipelines"][n].get(key, 0) for n in names]
    p90 = [bench.in_image["pipelines"][n].get(p90_key, 0) for n in names]
    ax2.axvspan(*SEED_CLAIM_MS, color="tab:green", alpha=0.15, label='seed: "1-5 ms"', zorder=0)
    ax2.barh([y + off for y in ys], img, height=0.38, label="in image (median)", color="tab:blue", zorder=2)
    ax2.scatter(p90, [y + off for y in ys], marker="|", s=200, color="k", label="in image p90", zorder=3)
    if bench.host:
        host = [(bench.host.get("pipelines") or {}).get(n, {}).get(key, 0) for n in names]
        ax2.barh([y - off for y in ys], host, height=0.38, label="host (median)", color="tab:orange", zorder=2)
    ax2.set_yticks(list(ys))
    ax2.set_yticklabels([n.replace(" (seed", "\n(seed") for n in names], fontsize=8)
    ax2.set_xlabel(f"{'CPU ' if key == 'cpu_median_ms' else ''}ms per image, one thread")
    ax2.set_title("Seed pipelines")
    ax2.grid(alpha=0.3, axis="x")
    ax2.legend(fontsize=8)
    fig.suptitle(_title(bench), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(bench: DataBench, out_dir: Path, png: Path | None = None) -> tuple[Path, Path, Path | None, str]:
    """JSON + markdown under out_dir, and the PNG (out_dir or ``png``); returns paths and the table."""
    from dlbase.core.errors import Missing
    from dlbase.core.fsutil import write_text_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jpath = out_dir / f"data-{stamp}.json"
    write_text_atomic(jpath, json.dumps(bench.to_dict(), indent=2) + "\n")
    table = markdown(bench)
    mpath = out_dir / f"data-{stamp}.md"
    write_text_atomic(mpath, f"# dlbase bench data: {bench.image} ({bench.started_at})\n\n{table}")
    try:
        ppath: Path | None = plot(bench, png or out_dir / f"data-{stamp}.png")
    except Missing:
        ppath = None
    return jpath, mpath, ppath, table
