"""Push and pull streams: progress events, the manifest digest, and the registry's
errors (which the daemon reports inside the stream, not as HTTP errors)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from docker import errors as docker_errors

from dlbase.core import digest as digests
from dlbase.core import errors
from dlbase.engine.daemon import api_message
from dlbase.engine.images import Images

_PUSH_DIGEST_RE = re.compile(rf"digest: ({digests.SHA256_PATTERN}) size: (\d+)")
_UNREACHABLE_MARKERS = ("connection refused", "no such host", "i/o timeout", "dial tcp", "connection reset",
                        "eof", "no route to host", "tls handshake timeout", "server misbehaving")
_AUTH_MARKERS = ("unauthorized", "authentication required", "denied", "no basic auth credentials")


@dataclass(frozen=True)
class TransferEvent:
    """One thing that happened during a push or pull, for a progress display.

    ``kind``: ``progress`` (bytes of one layer, ``current``/``total_bytes``), ``layer``
    (a layer finished: "Pushed", "Layer already exists", "Mounted from ..."), ``status``
    (any other line) or ``done`` (``digest`` set).
    """

    kind: str
    text: str = ""
    layer: str | None = None
    current: int | None = None
    total_bytes: int | None = None
    digest: str | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class PushResult:
    reference: str
    digest: str
    size: int | None
    layers: dict[str, str]
    seconds: float


def raise_stream_error(chunk: dict[str, Any], what: str) -> None:
    """Raise the typed error for an ``error``/``errorDetail`` chunk of a push/pull stream."""
    if "error" not in chunk and "errorDetail" not in chunk:
        return
    message = str((chunk.get("errorDetail") or {}).get("message") or chunk.get("error") or "unknown error").strip()
    lower = message.lower()
    if any(marker in lower for marker in _AUTH_MARKERS):
        raise errors.RegistryError(f"{what} refused by the registry: {message}",
                                   hint="check the credentials (docker login, or DLBASE_REGISTRY_USER / "
                                        "DLBASE_REGISTRY_PASSWORD)")
    if any(marker in lower for marker in _UNREACHABLE_MARKERS):
        raise errors.Unreachable(f"{what} failed, the registry could not be reached: {message}",
                                 hint="is the registry running and reachable from the Docker daemon?")
    raise errors.RegistryError(f"{what} failed; the daemon reported: {message}",
                               hint="look at the registry's log (storage full or read-only? layer refused?)")


class Transfers(Images):
    """``push`` and ``pull`` through the daemon (it holds the layers and the credentials' use)."""

    def push(self, repository: str, tag: str, *, auth_config: dict[str, str] | None = None,
             on_event: Callable[[TransferEvent], None] | None = None) -> PushResult:
        """Push ``repository:tag`` (the repository names the registry host) and return the
        manifest digest the registry answered with.

        The daemon reports most push failures *inside* the JSON stream (``error`` /
        ``errorDetail`` chunks) and docker-py does not raise on them, so every chunk is
        checked: a connection failure to the registry becomes
        :class:`~dlbase.core.errors.Unreachable`, anything else (credentials, storage errors,
        protocol) :class:`~dlbase.core.errors.RegistryError`, with the daemon's own words.
        A stream that ends without a digest is an error too. Ctrl-C drops the connection
        (the daemon then cancels the push; the registry is left with unreferenced blobs at
        most, never a new manifest) and raises Interrupted.
        """
        ref = f"{repository}:{tag}"
        emit = on_event or (lambda _event: None)
        started = time.monotonic()
        layers: dict[str, str] = {}
        found: dict[str, Any] = {}

        def handle(chunk: dict[str, Any]) -> None:
            elapsed = round(time.monotonic() - started, 3)
            aux = chunk.get("aux") or {}
            if aux.get("Digest"):
                found.update(digest=str(aux["Digest"]), size=aux.get("Size"))
                return
            status = str(chunk.get("status", ""))
            named = _PUSH_DIGEST_RE.search(status)
            if named:
                found.update(digest=named.group(1), size=int(named.group(2)))
            layer = chunk.get("id")
            detail = chunk.get("progressDetail") or {}
            if layer and detail.get("total"):
                emit(TransferEvent("progress", text=status, layer=layer, current=detail.get("current"),
                               total_bytes=detail.get("total"), elapsed=elapsed))
            elif layer and (status in ("Pushed", "Layer already exists") or status.startswith("Mounted from")):
                layers[layer] = status
                emit(TransferEvent("layer", text=status, layer=layer, elapsed=elapsed))
            elif status:
                emit(TransferEvent("status", text=f"{layer}: {status}" if layer else status,
                               layer=layer, elapsed=elapsed))

        self._follow("push", ref, missing=f"no local image {ref!r}",
                     interrupted=f"push of {ref} interrupted; the registry holds no new manifest "
                                 "for it (at most unreferenced layer blobs)",
                     start=lambda: self._api.push(repository, tag=tag, stream=True, decode=True,
                                                  auth_config=auth_config or None),
                     handle=handle)
        if not found.get("digest"):
            raise errors.RegistryError(f"push of {ref} ended without the registry naming a digest",
                                       hint="look at the registry's log; the push may be incomplete")
        seconds = round(time.monotonic() - started, 3)
        emit(TransferEvent("done", text=found["digest"], digest=found["digest"], elapsed=seconds))
        return PushResult(reference=ref, digest=found["digest"], size=found.get("size"), layers=layers,
                          seconds=seconds)

    def pull(self, repository: str, reference: str, *, auth_config: dict[str, str] | None = None,
             on_event: Callable[[TransferEvent], None] | None = None) -> str:
        """Pull ``repository@sha256:...`` (or ``:tag``) and return the local image ID.

        Errors reported inside the pull stream are raised like :meth:`push`'s.
        """
        sep = "@" if digests.is_digest(reference) else ":"
        ref = f"{repository}{sep}{reference}"
        emit = on_event or (lambda _event: None)
        started = time.monotonic()

        def handle(chunk: dict[str, Any]) -> None:
            status = str(chunk.get("status", ""))
            layer = chunk.get("id")
            detail = chunk.get("progressDetail") or {}
            elapsed = round(time.monotonic() - started, 3)
            if layer and detail.get("total"):  # "Downloading" / "Extracting": bytes of one layer
                emit(TransferEvent("progress", text=status, layer=layer, current=detail.get("current"),
                                   total_bytes=detail.get("total"), elapsed=elapsed))
            elif status:
                emit(TransferEvent("status", text=f"{layer}: {status}" if layer else status, layer=layer,
                               elapsed=elapsed))

        self._follow("pull", ref, missing=f"no image {ref!r} in the registry", interrupted=f"pull of {ref} interrupted",
                     start=lambda: self._api.pull(repository, tag=reference, stream=True, decode=True,
                                                  auth_config=auth_config or None),
                     handle=handle)
        return self.inspect_image(ref)["Id"]

    def _follow(self, verb: str, ref: str, *, missing: str, interrupted: str,
                start: Callable[[], Iterator[dict[str, Any]]], handle: Callable[[dict[str, Any]], None]) -> None:
        """Open a push/pull stream and hand each chunk to ``handle``, raising the typed
        error of any error the daemon reports (when opening it, or inside it). Ctrl-C
        drops the connection, so the daemon cancels, and raises Interrupted."""
        stream: Any = None
        try:
            with self._translate(f"{verb} {ref}", missing=missing):
                try:
                    stream = start()
                except docker_errors.APIError as exc:
                    if isinstance(exc, docker_errors.NotFound):
                        raise
                    raise_stream_error({"error": api_message(exc)}, f"{verb} of {ref}")
                for chunk in stream:
                    raise_stream_error(chunk, f"{verb} of {ref}")
                    handle(chunk)
        except KeyboardInterrupt:
            self._abort_stream(stream)
            raise errors.Interrupted(interrupted) from None
