"""Measure what the seed document claims about the data pipeline, wherever this runs.

Shipped inside every image (/opt/dlbase/tests/bench_data.py) and runnable on a host with the
same packages, so `dlbase bench data` can put both side by side. Imports nothing from dlbase.

    python bench_data.py [--quick] [--workers 0,1,2] [--preflight /opt/dlbase/preflight.py]

Prints one JSON document on stdout (progress on stderr):
- pipelines: the seed's 224 px colour pipeline (jitter, blur, normalise), its 640 px detection
  pipeline with boxes and labels, its validation pipeline: ms per image, median and p90, on
  one thread, as wall-clock and as the thread's CPU time (the seed says "1-5 ms", "under 3 ms"
  for the colour one); CPU time is what a loaded, shared machine distorts least;
- versus: Albumentations against torchvision.transforms.v2 on the transforms both have, the
  same input (a uint8 640x480 image; HWC numpy for one, CHW tensor for the other);
- loader: DataLoader images/s against num_workers 0..cores with the suite's ragged-box
  collate, and the scaling efficiency (throughput / (workers x single-process throughput));
- preflight: the cost of the image's start-up preflight, when its path is given.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# One thread everywhere before numpy/cv2/torch start their pools: per-image numbers are
# single-core numbers, and DataLoader workers scale by processes, not threads.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENCV_FOR_THREADS_NUM"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

SEED_CLAIM_MS = (1.0, 5.0)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def summary(samples_ms: list[float], cpu_ms: list[float] | None = None) -> dict:
    """Median, p90 and mean of wall-clock ms; with ``cpu_ms`` also the thread's CPU ms, which
    other processes on a shared machine barely move (wall time includes waiting for a core)."""
    def p90(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]

    out = {"median_ms": round(statistics.median(samples_ms), 4), "p90_ms": round(p90(samples_ms), 4),
           "mean_ms": round(statistics.fmean(samples_ms), 4), "n": len(samples_ms)}
    if cpu_ms:
        out["cpu_median_ms"] = round(statistics.median(cpu_ms), 4)
        out["cpu_p90_ms"] = round(p90(cpu_ms), 4)
    return out


def timed(fn, inputs: list, warmup: int) -> tuple[list[float], list[float]]:
    """Per call: wall ms and this thread's CPU ms."""
    for item in inputs[:warmup]:
        fn(item)
    wall, cpu = [], []
    for item in inputs:
        c0, t0 = time.thread_time(), time.perf_counter()
        fn(item)
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
    return wall, cpu


# ----------------------------------------------------------------------------- pipelines


def bench_pipelines(n: int) -> dict:
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    from loader_utils import DetectionDataset
    from seed_pipelines import colour_pipeline, detection_pipeline, validation_pipeline

    rng = np.random.default_rng(0)
    colour_inputs = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(n)]
    det = DetectionDataset(n, A.Compose([ToTensorV2()]))
    det_inputs = [det.raw(i) for i in range(n)]
    cases = {
        "colour 224px (seed: jitter+blur+normalize)": (colour_pipeline(seed=0), colour_inputs,
                                                       lambda t, x: t(image=x)),
        "detection 640px + boxes (seed)": (detection_pipeline(seed=0), det_inputs, lambda t, x: t(**x)),
        "validation 640px + boxes (seed)": (validation_pipeline(), det_inputs, lambda t, x: t(**x)),
    }
    out = {}
    for name, (transform, inputs, call) in cases.items():
        log(f"pipeline {name}: {len(inputs)} images")
        row = summary(*timed(lambda x, t=transform, c=call: c(t, x), inputs, warmup=10))
        # "1-5 ms" (faster is fine too), judged on CPU time: what the pipeline costs on an idle core
        row["within_seed_claim"] = row["cpu_median_ms"] <= SEED_CLAIM_MS[1]
        out[name] = row
    return out


# ----------------------------------------------------------------------------- versus


def bench_versus(n: int) -> dict:
    """Same operation, same input, both libraries; ms per image (median)."""
    try:
        import torch
        from torchvision.transforms import v2
    except ImportError as exc:
        return {"skipped": f"torchvision.transforms.v2 not importable: {exc}"}
    import albumentations as A

    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    hwc = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(n)]
    chw = [torch.from_numpy(x).permute(2, 0, 1).contiguous() for x in hwc]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    pairs = {
        "HorizontalFlip": (A.HorizontalFlip(p=1.0), v2.RandomHorizontalFlip(p=1.0)),
        "Resize 640x640": (A.Resize(640, 640), v2.Resize((640, 640), antialias=True)),
        "RandomResizedCrop 224": (A.RandomResizedCrop(size=(224, 224)), v2.RandomResizedCrop((224, 224), antialias=True)),
        "ColorJitter": (A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1, p=1.0),
                        v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1)),
        "GaussianBlur k5": (A.GaussianBlur(blur_limit=(5, 5), sigma_limit=(1.0, 1.0), p=1.0),
                            v2.GaussianBlur(kernel_size=5, sigma=1.0)),
        "Normalize (uint8 -> float)": (A.Normalize(mean=mean, std=std),
                                       v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])),
    }
    out = {}
    for name, (alb, tv) in pairs.items():
        log(f"versus {name}")
        a = summary(*timed(lambda x, t=alb: t(image=x), hwc, warmup=5))
        t = summary(*timed(lambda x, t=tv: t(x), chw, warmup=5))
        out[name] = {"albumentations_ms": a["cpu_median_ms"], "torchvision_v2_ms": t["cpu_median_ms"],
                     "albumentations_wall_ms": a["median_ms"], "torchvision_v2_wall_ms": t["median_ms"],
                     "torchvision_over_albumentations": round(t["cpu_median_ms"] / a["cpu_median_ms"], 3)
                     if a["cpu_median_ms"] else None}
    return out


# ----------------------------------------------------------------------------- loader


def bench_loader(workers: list[int], images: int, batch_size: int) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from loader_utils import DetectionDataset, detection_collate, worker_init_fn
    from seed_pipelines import detection_pipeline

    torch.set_num_threads(1)
    rows = []
    for nw in workers:
        log(f"loader num_workers={nw}: {images} images, batch {batch_size}")
        ds = DetectionDataset(images, detection_pipeline(seed=0))
        kwargs = {"num_workers": nw, "batch_size": batch_size, "collate_fn": detection_collate,
                  "worker_init_fn": worker_init_fn}
        if nw:
            kwargs["prefetch_factor"] = 2
        loader = DataLoader(ds, **kwargs)
        t0 = time.perf_counter()
        first = None
        seen = 0
        for batch in loader:
            if first is None:
                first = time.perf_counter()
            seen += len(batch["index"])
        end = time.perf_counter()
        steady = (seen - batch_size) / (end - first) if seen > batch_size and end > first else None
        rows.append({"num_workers": nw, "images": seen, "seconds": round(end - t0, 3),
                     "images_per_s": round(seen / (end - t0), 2),
                     "steady_images_per_s": round(steady, 2) if steady else None,
                     "first_batch_s": round(first - t0, 3) if first else None})
    # Scaling efficiency on the steady rate (after the first batch, i.e. without worker start-up):
    # rate(n) / (n x rate(0)); 1.0 = every worker as fast as the main process alone.
    base = next((r["steady_images_per_s"] for r in rows if r["num_workers"] == 0), None)
    for r in rows:
        rate = r["steady_images_per_s"]
        r["efficiency"] = round(rate / (base * max(r["num_workers"], 1)), 3) if base and rate else None
    return {"batch_size": batch_size, "collate": "loader_utils.detection_collate (ragged boxes)", "rows": rows}


# ----------------------------------------------------------------------------- preflight


def bench_preflight(path: str, runs: int) -> dict:
    """What the entrypoint adds: `python -I -S preflight.py`, against bare `python -I -S -c pass`."""
    env = {**os.environ, "DLBASE_PREFLIGHT": "quiet"}

    def wall(argv: list[str]) -> list[float]:
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            out.append((time.perf_counter() - t0) * 1000.0)
        return out

    log(f"preflight: {runs} runs")
    bare = summary(wall([sys.executable, "-I", "-S", "-c", "pass"]))
    full = summary(wall([sys.executable, "-I", "-S", path]))
    # and the children's CPU time, which the machine's load does not inflate
    c0 = os.times()
    wall([sys.executable, "-I", "-S", path])
    c1 = os.times()
    full["cpu_mean_ms"] = round(((c1.children_user - c0.children_user) + (c1.children_system - c0.children_system))
                                * 1000.0 / runs, 3)
    return {"preflight_ms": full, "python_startup_ms": bare,
            "preflight_own_ms": round(full["median_ms"] - bare["median_ms"], 3), "runs": runs}


# ----------------------------------------------------------------------------- main


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("torch", "torchvision", "albumentations", "albucore", "opencv-python-headless", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images (a smoke run, not a measurement)")
    parser.add_argument("--workers", default=None, help="comma-separated num_workers (default 0..cores)")
    parser.add_argument("--preflight", default=None, help="path of preflight.py to time")
    parser.add_argument("--parts", default="pipelines,versus,loader,preflight")
    args = parser.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    n = 30 if args.quick else 200
    ncores = cores()
    workers = [int(w) for w in args.workers.split(",")] if args.workers else list(range(0, ncores + 1))
    parts = set(args.parts.split(","))
    result = {"kind": "dlbase.bench.data.sample", "cpu": cpu_model(), "cores": ncores,
              "machine": platform.machine(), "versions": versions(), "quick": args.quick,
              "in_image": Path("/opt/dlbase/image.json").is_file()}
    # Other work on the machine skews every number: record the load it ran under.
    result["loadavg_before"] = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    if "pipelines" in parts:
        result["pipelines"] = bench_pipelines(n)
    if "versus" in parts:
        result["versus"] = bench_versus(n // 2)
    if "loader" in parts:
        result["loader"] = bench_loader(workers, images=64 if args.quick else 384, batch_size=32)
    if "preflight" in parts and args.preflight and Path(args.preflight).is_file():
        result["preflight"] = bench_preflight(args.preflight, 5 if args.quick else 30)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    result["loadavg_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
