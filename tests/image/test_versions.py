"""What is installed equals what the image promises (image.json and its requirements.lock)."""
from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path
from typing import Any

import pytest

import known_bugs
from image_info import cudnn_version_code, marker_applies, normalize_name, parse_lock, public_version

pytestmark = pytest.mark.needs_image_info
# Installers' own tooling: pip does not lock these unless asked (--allow-unsafe), so they may
# be present without a lock entry; when the lock does list them, the version must still match.
BOOTSTRAP = {"pip", "setuptools", "wheel"}


@pytest.fixture(scope="module")
def lock(image_info: dict[str, Any]) -> dict[str, str]:
    path = Path(image_info["lock_file"])
    assert path.is_file(), f"image.json names lock file {path}, which does not exist"
    return {e.name: e.version for e in parse_lock(path.read_text(encoding="utf-8")) if marker_applies(e.marker)}


def installed() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            found[normalize_name(name)] = dist.version
    return found


def test_every_installed_distribution_equals_the_lock(lock: dict[str, str]) -> None:
    have = installed()
    unlocked = sorted(f"{n}=={v}" for n, v in have.items() if n not in lock and n not in BOOTSTRAP)
    wrong = sorted(f"{n}: installed {have[n]}, locked {v}" for n, v in lock.items() if n in have and have[n] != v)
    absent = sorted(f"{n}=={v}" for n, v in lock.items() if n not in have)
    assert not (unlocked or wrong or absent), (
        f"not in the lock: {unlocked}\nversion differs: {wrong}\nlocked but not installed: {absent}")


def test_torch_torchvision_torchaudio_are_a_compatible_pair(image_info: dict[str, Any]) -> None:
    import torch
    import torchvision

    have = {"torch": public_version(torch.__version__), "torchvision": public_version(torchvision.__version__)}
    try:
        have["torchaudio"] = public_version(version("torchaudio"))
    except PackageNotFoundError:
        have["torchaudio"] = None
    for key in ("torch", "torchvision"):
        assert have[key] == public_version(str(image_info[key])), f"{key} {have[key]} != image.json {image_info[key]}"
    pairs = image_info["compatible_pairs"]
    match = [p for p in pairs if p["torch"] == have["torch"] and p["torchvision"] == have["torchvision"]
             and (have["torchaudio"] is None or p.get("torchaudio") == have["torchaudio"])]
    assert match, f"{have} is not a pair listed in the compatibility table: {pairs}"


def test_torch_cuda_line_equals_the_variant(image_info: dict[str, Any]) -> None:
    import torch

    assert torch.version.cuda == image_info["cuda"], (
        f"torch was built for CUDA {torch.version.cuda}, the variant promises {image_info['cuda']}")


def test_cudnn_version_is_the_one_the_cuda_line_brings(image_info: dict[str, Any]) -> None:
    import torch

    if image_info["cudnn"] is None:
        assert image_info["cuda"] is None, "a CUDA variant must name its cuDNN"
        pytest.skip("CPU variant: no cuDNN promised")
    want = cudnn_version_code(str(image_info["cudnn"]))
    assert torch.backends.cudnn.version() == want, (
        f"torch.backends.cudnn.version() is {torch.backends.cudnn.version()}, "
        f"cuDNN {image_info['cudnn']} encodes as {want}")


def test_python_albumentations_opencv_numpy_versions_equal_image_info(image_info: dict[str, Any]) -> None:
    import cv2
    import numpy

    assert f"{sys.version_info.major}.{sys.version_info.minor}" == str(image_info["python"])
    assert known_bugs.VERSION == str(image_info["albumentations"]), (
        f"{known_bugs.DISTRIBUTION} {known_bugs.VERSION} != image.json {image_info['albumentations']}")
    assert numpy.__version__ == str(image_info["numpy"])
    opencv = str(image_info["opencv"])
    assert version("opencv-python-headless") == opencv or cv2.__version__ == opencv, (
        f"opencv-python-headless {version('opencv-python-headless')} / cv2 {cv2.__version__} != {opencv}")


def test_only_headless_opencv_is_installed() -> None:
    """opencv-python or -contrib next to the headless wheel fight over the cv2 package (and pull GUI libs)."""
    have = installed()
    assert "opencv-python-headless" in have, "opencv-python-headless is not installed"
    others = sorted(n for n in ("opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless") if n in have)
    assert not others, f"other OpenCV distributions installed: {others}"


def test_albumentations_update_check_is_disabled() -> None:
    """albumentations 2.x checks PyPI at import; offline containers print an SSL warning without this."""
    assert os.environ.get("NO_ALBUMENTATIONS_UPDATE") == "1", "NO_ALBUMENTATIONS_UPDATE=1 is not set in the image"
