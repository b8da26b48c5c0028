"""Images on the daemon: inspect, labels, tag/untag, remove, history, import, listings."""

from __future__ import annotations

import contextlib
import json
import os
from typing import IO, Any

from dlbase.core import digest as digests
from dlbase.core import errors
from dlbase.core import imageref
from dlbase.engine.daemon import Daemon


class Images(Daemon):
    """Image operations; every daemon error arrives as a :mod:`dlbase.core.errors` type."""

    def image_exists(self, ref: str) -> bool:
        try:
            self.inspect_image(ref)
        except errors.Missing:
            return False
        return True

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """The daemon's inspect document; Missing when there is no such image."""
        with self._translate("inspect an image", missing=f"no image {ref!r}"):
            return self._api.inspect_image(ref)

    def image_labels(self, ref: str) -> dict[str, str]:
        """The image's labels ({} when it has none); Missing when there is no such image."""
        return imageref.labels_of(self.inspect_image(ref))

    def remove_image(self, ref: str, force: bool = False) -> None:
        with self._translate(f"remove image {ref}", missing=f"no image {ref!r}"):
            self._api.remove_image(ref, force=force)

    def tag(self, image_id: str, repository: str, tag: str) -> str:
        """Point ``repository:tag`` at ``image_id`` and return the full reference."""
        with self._translate(f"tag {image_id} as {repository}:{tag}", missing=f"no image {image_id!r}"):
            self._api.tag(image_id, repository, tag, force=True)
        return f"{repository}:{tag}"

    def untag(self, repository: str, tag: str) -> None:
        """Remove one tag.

        The daemon deletes the image too when this was its last tag and nothing (a
        container, a child image) uses it -- an untagged top image is only clutter.
        Its untagged parent layers go with it, as with `docker rmi`.
        """
        ref = f"{repository}:{tag}"
        with self._translate(f"untag {ref}", missing=f"no tag {ref!r}"):
            self._api.remove_image(ref)

    def image_history(self, ref: str) -> list[dict[str, Any]]:
        """The image's layer history (``docker history``): each step's ``CreatedBy``, newest first.
        Build args used by a RUN step are recorded there, which is why verify reads it."""
        with self._translate("read an image's history", missing=f"no image {ref!r}"):
            return list(self._api.history(ref))

    def images_with_label(self, label: str, *, intermediate: bool = True) -> list[dict[str, Any]]:
        """Image summaries carrying ``label`` (``key`` or ``key=value``). ``intermediate=False``
        leaves out the classic builder's intermediate images (a LABEL step's children carry
        its labels too), as ``docker images`` without ``-a`` does."""
        with self._translate("list images"):
            return self._api.images(all=intermediate, filters={"label": label})

    def dangling_images(self) -> list[str]:
        with self._translate("list images"):
            return [img["Id"] for img in self._api.images(filters={"dangling": True})]

    def import_rootfs(self, tar: str | os.PathLike[str] | IO[bytes], repository: str, tag: str,
                      changes: list[str] | None = None, labels: dict[str, str] | None = None) -> str:
        """``docker import`` a root filesystem tar and return the new image ID.

        Labels are expressed as ``LABEL`` changes because the import API has no labels
        parameter; values are JSON-quoted so spaces and ``=`` survive.
        """
        all_changes = list(changes or [])
        for key, value in (labels or {}).items():
            all_changes.append(f"LABEL {json.dumps(key)}={json.dumps(value)}")
        src: Any = os.fspath(tar) if isinstance(tar, (str, os.PathLike)) else tar
        with self._translate(f"import {repository}:{tag}"):
            raw = self._api.import_image(src=src, repository=repository, tag=tag,
                                         changes=all_changes or None)
        image_id = import_result_id(raw)
        if image_id is None:
            image_id = self.inspect_image(f"{repository}:{tag}")["Id"]
        return image_id

    def image_ids(self) -> frozenset[str] | None:
        """Every image ID in the store, or None when the daemon does not answer. Taken before
        a build, it tells which images the build did not make: an equal image built earlier
        has the same ID (BuildKit's reproducible digests), and is not the build's to remove."""
        try:
            return frozenset(str(i) for i in self._api.images(all=True, quiet=True))
        except Exception:  # noqa: BLE001 - unknown: then nothing counts as made here
            return None

    def remove_made(self, image_ids: list[str], existed: frozenset[str] | None, *, force: bool = False) -> list[str]:
        """Remove each of ``image_ids`` that was not in ``existed`` (:meth:`image_ids` before
        it was made) and that no tag names; nothing when ``existed`` is unknown. Best effort
        (the caller's own outcome is what the user must see); returns what was removed."""
        removed: list[str] = []
        if existed is None:
            return removed
        for image_id in dict.fromkeys(image_ids):
            if image_id in existed:
                continue
            with contextlib.suppress(Exception):
                if self.image_exists(image_id) and not self._has_tags(image_id):
                    self._api.remove_image(image_id, force=force)
                    removed.append(image_id)
        return removed

    def _full_image_id(self, short: str) -> str:
        if digests.is_sha256(short):
            return short
        return self.inspect_image(short)["Id"]

    def _has_tags(self, image_id: str) -> bool:
        return bool(imageref.repo_tags(self._api.inspect_image(image_id)))


def import_result_id(raw: Any) -> str | None:
    """The image ID from the import API's JSON-lines answer (``{"status": "sha256:..."}``)."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    for line in reversed(text.strip().splitlines()):
        with contextlib.suppress(ValueError):
            status = json.loads(line).get("status", "")
            if isinstance(status, str) and status.startswith("sha256:"):
                return status
    return None
