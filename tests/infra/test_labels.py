"""The labels tell the truth: they exist, and equal what is installed inside the image."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

LOCK_IN_IMAGE = "/opt/dlbase/requirements.lock"
REQUIRED = (
    "dlbase.variant", "dlbase.flavor", "dlbase.torch", "dlbase.torchvision", "dlbase.cuda", "dlbase.cuda-line",
    "dlbase.cudnn", "dlbase.nccl", "dlbase.python", "dlbase.albumentations", "dlbase.opencv", "dlbase.numpy",
    "dlbase.lock-hash", "dlbase.min-driver",
    "org.opencontainers.image.title", "org.opencontainers.image.created", "org.opencontainers.image.revision",
    "org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.base.name",
    "org.opencontainers.image.base.digest",
)


def _cudnn_int(version: str) -> int:
    from dlbase.build.builder import cudnn_int

    return cudnn_int(version)


@pytest.mark.check("labels present")
def test_required_labels_are_present(expect: dict[str, Any]) -> None:
    labels = expect["labels"]
    missing = [key for key in REQUIRED if not str(labels.get(key, "")).strip()]
    assert not missing, f"labels missing or empty: {', '.join(missing)}"


@pytest.mark.check("labels equal installed versions")
def test_labels_equal_the_installed_versions(expect: dict[str, Any], probe: dict[str, Any], host) -> None:
    from dlbase.define.lock import lock_hash

    labels = expect["labels"]
    problems = []

    def same(label: str, installed: Any, what: str) -> None:
        if label not in labels:
            return  # "labels present" names it
        if str(labels[label]) != str(installed):
            problems.append(f"{label}={labels[label]} but {what} is {installed}")

    same("dlbase.torch", probe.get("torch"), "torch")
    same("dlbase.torchvision", probe.get("torchvision"), "torchvision")
    same("dlbase.cuda", probe.get("cuda"), "torch.version.cuda")
    same("dlbase.python", probe.get("python"), "python")
    same("dlbase.albumentations", probe.get("albumentations"), "albumentations")
    same("dlbase.opencv", probe.get("opencv"), "opencv-python-headless")
    same("dlbase.numpy", probe.get("numpy"), "numpy")
    if "dlbase.cudnn" in labels:
        wheel = probe.get("cudnn_wheel") or probe.get("cudnn_wheel_cu11")
        if probe.get("cudnn_int") is not None and probe["cudnn_int"] != _cudnn_int(labels["dlbase.cudnn"]):
            problems.append(f"dlbase.cudnn={labels['dlbase.cudnn']} but torch.backends.cudnn.version() "
                            f"is {probe['cudnn_int']}")
        if wheel is not None and wheel != labels["dlbase.cudnn"]:
            problems.append(f"dlbase.cudnn={labels['dlbase.cudnn']} but the cuDNN wheel is {wheel}")
    if "dlbase.nccl" in labels:
        same("dlbase.nccl", probe.get("nccl") or probe.get("nccl_wheel"), "NCCL")
    if "dlbase.lock-hash" in labels:
        lock = host.file(LOCK_IN_IMAGE)
        if not lock.exists:
            problems.append(f"dlbase.lock-hash is set but {LOCK_IN_IMAGE} is not in the image")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "requirements.lock"
                path.write_bytes(lock.content)
                same("dlbase.lock-hash", lock_hash(path), f"the hash of {LOCK_IN_IMAGE}")
    assert not problems, "; ".join(problems)


@pytest.mark.check("labels match the variant")
def test_labels_match_the_variant(expect: dict[str, Any]) -> None:
    want = expect.get("variant_labels")
    if not want:
        pytest.skip(f"the image names no variant of this matrix (dlbase.variant={expect['labels'].get('dlbase.variant')})")
    have = expect["labels"]
    wrong = [f"{k}={have.get(k)!r}, variant {expect['variant']} says {v!r}" for k, v in sorted(want.items())
             if k != "dlbase.managed" and have.get(k) != v]
    assert not wrong, "; ".join(wrong)


@pytest.mark.check("torch/torchvision pair")
def test_torch_and_torchvision_are_a_compatible_pair(expect: dict[str, Any], probe: dict[str, Any]) -> None:
    torch, vision = probe.get("torch"), probe.get("torchvision")
    assert torch and vision, f"torch ({torch}) or torchvision ({vision}) is not installed"
    pairs = expect["compat_pairs"]
    matching = [p for p in pairs if p["torch"] == torch]
    assert any(p["torchvision"] == vision for p in matching), (
        f"torch {torch} with torchvision {vision} is not a compatible pair"
        + (f" (torch {torch} goes with torchvision {', '.join(sorted({p['torchvision'] for p in matching}))})"
           if matching else f" (torch {torch} is not in the compatibility table)"))
    audio = probe.get("torchaudio")
    if audio:
        assert any(p["torchvision"] == vision and p.get("torchaudio") == audio.split("+")[0] for p in matching), (
            f"torchaudio {audio} does not go with torch {torch}")
