"""Read the facts a built image promises about itself (image.json and its lock file).

The in-image suite must not import dlbase, so the build writes what the tests expect into a
small JSON file; this module is the only place that knows its path and shape.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_IMAGE_INFO = "/opt/dlbase/image.json"
REQUIRED_KEYS = (
    "variant", "flavor", "torch", "torchvision", "torchaudio", "cuda", "cudnn", "nccl",
    "python", "albumentations", "opencv", "numpy", "lock_file", "compatible_pairs",
)


def image_info_path() -> Path:
    """Where the build wrote image.json (overridable so a developer can point at a copy)."""
    return Path(os.environ.get("DLBASE_IMAGE_INFO", DEFAULT_IMAGE_INFO))


def load_image_info(path: Path | None = None) -> dict[str, Any] | None:
    """Return the parsed image.json, or None when the file is absent (developer venv)."""
    path = path or image_info_path()
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path} lacks keys {missing}; the build wrote an incomplete image.json")
    return data


def normalize_name(name: str) -> str:
    """PEP 503 normalisation, so `opencv_python_headless` and `opencv-python-headless` agree."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockEntry:
    """One `name==version` requirement of requirements.lock (hashes are pip's business)."""

    name: str
    version: str
    marker: str | None
    line: int


_REQ = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*(?P<version>[^\s;\\]+)"
                  r"\s*(;(?P<marker>[^\\]*))?")


def parse_lock(text: str) -> list[LockEntry]:
    """Parse a hash-pinned lock (`name==version \\` + `--hash=` continuation lines, comments)."""
    entries: list[LockEntry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "--")):
            continue
        match = _REQ.match(line)
        if match is None:
            raise ValueError(f"lock line {number} is not `name==version`: {raw!r}")
        marker = (match.group("marker") or "").strip() or None
        entries.append(LockEntry(normalize_name(match.group("name")), match.group("version"), marker, number))
    return entries


def marker_applies(marker: str | None) -> bool:
    """Evaluate an environment marker with packaging when available (pip vendors it)."""
    if marker is None:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:  # pragma: no cover - pip always vendors packaging
        try:
            from pip._vendor.packaging.markers import Marker  # type: ignore[no-redef]
        except ImportError:
            return True
    return bool(Marker(marker).evaluate())


def public_version(version: str) -> str:
    """Drop a local label (`2.6.0+cu118` -> `2.6.0`): the compat table lists public versions."""
    return version.split("+", 1)[0]


def cudnn_version_code(version: str) -> int:
    """Encode a cuDNN version the way torch.backends.cudnn.version() reports it.

    cuDNN 9 uses major*10000 + minor*100 + patch (9.1.0.70 -> 90100); cuDNN 8 and older used
    major*1000 + minor*100 + patch (8.9.2 -> 8902). The fourth component is a build number.
    """
    parts = [int(p) for p in version.split(".")[:3]]
    while len(parts) < 3:
        parts.append(0)
    major, minor, patch = parts
    if major >= 9:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch
