"""Label-based clean-up: remove what dlbase made (and only that) from a shared daemon."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dlbase.core import errors
from dlbase.core.imageref import labels_of
from dlbase.engine.build import BUILD_ID_LABEL
from dlbase.engine.containers import Containers
from dlbase.engine.images import Images


LEFTOVER_SETTLE_S = 0.5
MAX_LEFTOVER_PASSES = 64  # more than any Dockerfile here has steps after its LABEL step


@dataclass(frozen=True)
class CleanupReport:
    """What :meth:`Cleanup.cleanup` removed, and what it had to keep (ID -> reason)."""

    containers: list[str]
    images: list[str]
    kept: dict[str, str] = field(default_factory=dict)


class Cleanup(Containers, Images):
    def cleanup(self, label: str) -> CleanupReport:
        """Remove containers, then images, that carry ``label`` (``key`` or ``key=value``).

        Refuses labels outside the ``dlbase.`` namespace so it can never touch anything
        on the shared daemon that dlbase did not make. Images are removed newest first,
        so children go before the parents they were built on.
        """
        if not label.startswith("dlbase."):
            raise errors.InvalidInput(f"refusing to clean up by label {label!r}",
                                      hint="only dlbase.* labels can be cleaned up")
        removed_containers = []
        for summary in self.containers_with_label(label):
            self._remove_container(summary["Id"])
            removed_containers.append(summary["Id"])
        labelled = sorted(self.images_with_label(label), key=self._created_ns, reverse=True)
        removed_images, kept = self._remove_images_children_first([s["Id"] for s in labelled])
        builds = {labels_of(s).get(BUILD_ID_LABEL) for s in labelled} - {None, ""}
        removed_images += self.remove_build_leftovers(builds)
        return CleanupReport(containers=removed_containers, images=removed_images, kept=kept)

    def remove_build_leftovers(self, build_ids: set[str]) -> list[str]:
        """Remove the untagged images of these builds that nothing builds on any more.

        Why: with the containerd image store, removing a classic build's image leaves its
        parent step (which carries the build's labels but not the ones added at the end,
        a test session's included) as a dangling image; the classic store removed such
        untagged parents along with the child. Only dangling images carrying one of these
        build IDs are touched (a build ID is one build's), each pass exposing the next
        parent up to the step before the build's LABEL step."""
        removed: list[str] = []
        for build_id in sorted(build_ids):
            settled = False
            for _pass in range(MAX_LEFTOVER_PASSES):
                with self._translate("list images"):
                    found = self._api.images(filters={"dangling": True, "label": f"{BUILD_ID_LABEL}={build_id}"},
                                             quiet=True)
                gone = []
                for image_id in found:
                    try:
                        with self._translate(f"remove image {image_id}", missing="gone"):
                            self._api.remove_image(image_id)
                        gone.append(image_id)
                    except errors.DaemonUnavailable:
                        raise
                    except errors.DlbaseError:
                        continue  # in use (a container, a child): not a leftover
                removed += gone
                if not gone:
                    if settled:
                        break
                    # the daemon shows a removed child's parent as dangling a moment later
                    time.sleep(LEFTOVER_SETTLE_S)
                    settled = True
                else:
                    settled = False
        return removed

    def _created_ns(self, summary: dict) -> tuple[int, int]:
        """When the image was made, to the nanosecond where the daemon says it.

        Why: the list's "Created" has one-second resolution, and a classic build's step
        images and its final image (and the base a test imports just before) share a
        second; the inspect document's RFC 3339 time orders them."""
        seconds = int(summary.get("Created") or 0)
        try:
            text = str(self.inspect_image(summary["Id"]).get("Created") or "")
        except errors.DlbaseError:
            return seconds, 0  # gone meanwhile: its place in the order no longer matters
        fraction = text.rstrip("Z").partition(".")[2]
        return seconds, int(fraction[:9].ljust(9, "0")) if fraction.isdigit() else 0

    def _remove_images_children_first(self, image_ids: list[str]) -> tuple[list[str], dict[str, str]]:
        """Remove images in passes, retrying those that still had children.

        "Created" has one-second resolution, so sorting cannot order a build's
        intermediate images (the classic builder's LABEL steps carry the labels too);
        the daemon answers 409 for a parent, which is retried after its children went.
        Images pruned along with a child (untagged parents) simply vanish.
        """
        removed: list[str] = []
        pending = list(image_ids)
        kept: dict[str, str] = {}
        while pending:
            kept = {}
            for image_id in pending:
                try:
                    with self._translate(f"remove image {image_id}", missing="gone"):
                        self._api.remove_image(image_id, force=True)
                    removed.append(image_id)
                except errors.Missing:
                    continue
                except errors.DaemonUnavailable:
                    raise
                except errors.DlbaseError as exc:
                    kept[image_id] = exc.message
            if len(kept) == len(pending):
                break  # no progress: what is left is used by something unlabelled
            pending = list(kept)
        return removed, kept
