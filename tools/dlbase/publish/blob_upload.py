"""Upload a converted image (:mod:`dlbase.publish.layer_convert`) with the project's own
registry client, blobs first and the manifest last.

Why not the daemon: `docker push` sends the layers as the daemon stores them and has no
option to re-encode. The order is what makes a failure safe: a tag exists only
once its manifest is PUT, and the registry accepts a manifest only when every blob it
names is there, so a push that fails or is interrupted before the end leaves unreferenced
blobs at most (which a registry's garbage collection removes), never a tag.
"""

from __future__ import annotations

import time
from typing import Callable

from dlbase.engine import TransferEvent
from dlbase.publish.layer_convert import Converted, _short
from dlbase.registry.client import RegistryClient


def upload_blobs(client: RegistryClient, repository: str, converted: Converted,
                 on_event: Callable[[TransferEvent], None] = lambda _e: None) -> dict[str, str]:
    """Every layer (chunked, with per-layer byte progress) and then the config; for each
    layer its short digest -> "Pushed" or "Layer already exists", as `docker push` says."""
    started = time.monotonic()
    done: dict[str, str] = {}
    for layer in converted.layers:
        short = _short(layer.digest)

        def progress(sent: int, short: str = short, total: int = layer.size) -> None:
            on_event(TransferEvent("progress", text="Pushing", layer=short, current=sent, total_bytes=total,
                                   elapsed=round(time.monotonic() - started, 3)))

        uploaded = client.upload_blob_file(repository, layer.path, layer.digest, layer.size, on_progress=progress)
        done[short] = "Pushed" if uploaded else "Layer already exists"
        on_event(TransferEvent("layer", text=done[short], layer=short, elapsed=round(time.monotonic() - started, 3)))
    client.upload_blob(repository, converted.config)
    return done
