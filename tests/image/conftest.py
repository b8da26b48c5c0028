"""Shared fixtures and options of the in-image suite.

This suite is copied into every image and run there by `dlbase verify`; it imports nothing
from dlbase. What the image promises comes from image.json (see image_info.py).
"""
from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # helpers import by bare name, any cwd

from image_info import image_info_path, load_image_info  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    """--require-gpu: on a GPU host a missing GPU must fail loudly, not skip quietly."""
    parser.addoption(
        "--require-gpu",
        action="store_true",
        default=False,
        help="fail (instead of skip) tests marked gpu when no usable CUDA device is visible",
    )


def cuda_unavailable_reason() -> str | None:
    """Why GPU tests cannot run here, or None when at least one CUDA device is usable."""
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build (torch.version.cuda is None)"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False: no visible GPU or no usable driver (CPU host)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip gpu-marked tests on CPU hosts, or fail them under --require-gpu."""
    if item.get_closest_marker("gpu") is None:
        return
    reason = cuda_unavailable_reason()
    if reason is None:
        return
    if item.config.getoption("--require-gpu"):
        pytest.fail(f"--require-gpu given but {reason}", pytrace=False)
    pytest.skip(f"GPU test on a CPU host: {reason}")


@pytest.fixture(scope="session")
def require_gpu(pytestconfig: pytest.Config) -> bool:
    """Whether this run was told that a GPU must be present."""
    return bool(pytestconfig.getoption("--require-gpu"))


@pytest.fixture(scope="session")
def image_info() -> dict[str, Any]:
    """The image's build-time facts; tests that need them skip (with the path) when absent."""
    info = load_image_info()
    if info is None:
        pytest.skip(
            f"no image.json at {image_info_path()} (set DLBASE_IMAGE_INFO): not running inside a "
            "dlbase image, so there are no promised versions to compare against"
        )
    return info


_WARNING_SOURCES = (f"{os.sep}albumentations{os.sep}", f"{os.sep}albucore{os.sep}")


def _warning_caller_file() -> str:
    """File of the code that called warnings.warn (skipping the warnings machinery and this file)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in (warnings.__file__, __file__):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else ""


@pytest.fixture(autouse=True)
def albumentations_warnings_are_errors() -> Iterator[None]:
    """Turn every warning that albumentations code issues into an exception, where it is issued.

    albumentations 2.x warns about removed or misspelled arguments with stacklevel=2, which
    attributes the warning to the *caller's* module, so a pytest.ini `error::Warning:albumentations`
    filter alone misses exactly the case that matters. Here the caller of warnings.warn is
    inspected instead; warnings from other code are passed on to pytest unchanged.
    """
    previous = warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if any(src in _warning_caller_file() for src in _WARNING_SOURCES):
            raise message if isinstance(message, Warning) else category(str(message))
        previous(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        # Appended, so pytest's ini and mark filters still win; unmatched warnings reach show().
        warnings.simplefilter("always", append=True)
        warnings.showwarning = show
        yield
