"""Small facts about an image that several modules need, derived in one place.

Pure (no daemon): these read the inspect document the engine returns, or an image ID.
"""

from __future__ import annotations

from typing import Any

NO_TAG = "<none>:<none>"


def short_id(image_id: str) -> str:
    """The first 12 hex digits of an image ID (``sha256:`` prefix or not), as `docker
    images` shows them; report and SBOM file names use it."""
    return image_id.split(":")[-1][:12]


def labels_of(inspect: dict[str, Any]) -> dict[str, str]:
    """The labels of an image from its inspect document, or from a summary of the image
    list (which has them at the top, with no Config); {} when it has none."""
    source = inspect.get("Config") if "Config" in inspect else inspect
    return dict((source or {}).get("Labels") or {})


def repo_tags(inspect: dict[str, Any]) -> list[str]:
    """The image's real tags (the daemon lists ``<none>:<none>`` for untagged images)."""
    return [t for t in inspect.get("RepoTags") or [] if t != NO_TAG]
