"""Bounded HTTP for the registry client: a size cap on every body, a deadline on every call,
redirects followed by hand so that credentials never leave the origin they belong to.

Why not plain ``requests``: its ``timeout`` bounds each socket read, not a call, so a
server that sends one byte every 5 s holds a call forever; ``resp.content`` reads a body
of any size into memory (a 300 MB "manifest" cost 673 MB RSS); and its redirect handling
decides on its own which headers follow a ``Location``. Here:

- a body is streamed and refused once it passes its cap (a ``Content-Length`` above the
  cap is refused before reading);
- a call (all its redirects, the headers and the body) has one deadline: a watchdog shuts
  the socket down when it passes, since a blocked read cannot otherwise be interrupted;
- each hop asks ``authorize(url)`` for its ``Authorization`` header, so the caller decides
  per URL; a redirect loop or more than :data:`MAX_REDIRECTS` hops is a registry error.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.connection
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from dlbase.core import networds
from dlbase.core.errors import RegistryError, Unreachable

MANIFEST_MAX = 4 << 20  # registries themselves refuse manifests above 4 MiB
JSON_MAX = 1 << 20  # a tag-list page, a token answer, an error body
BLOB_MAX = 64 << 20  # signature and attestation blobs (an SBOM is the largest, ~1 MiB)
DEADLINE_S = 60.0
MAX_REDIRECTS = 5
_CHUNK = 64 << 10
_REDIRECTS = (301, 302, 303, 307, 308)

_current = threading.local()


@dataclass(frozen=True)
class Answer:
    """A registry's answer, read whole within its cap."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL: what "the same server" means for credentials."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class _Deadline:
    """Shuts the socket of the running call down when the call's deadline passes."""

    def __init__(self, at: float):
        self.at, self.fired = at, False
        self._timer: threading.Timer | None = None

    def arm(self, sock: socket.socket) -> None:
        self.cancel()
        self._timer = threading.Timer(max(0.0, self.at - time.monotonic()), self._fire, args=(sock,))
        self._timer.daemon = True
        self._timer.start()

    def _fire(self, sock: socket.socket) -> None:
        self.fired = True
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class _Watched:
    """Arms the calling thread's deadline on the socket before the answer is read."""

    sock: socket.socket | None

    def getresponse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        watch = getattr(_current, "deadline", None)
        if watch is not None and self.sock is not None:
            watch.arm(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections that arm the deadline (direct or through a proxy)."""

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return manager


class BoundedHttp:
    """HTTP calls to one registry with caps, deadlines and per-hop authorization."""

    def __init__(self, name: str, *, timeout: float, deadline: float = DEADLINE_S):
        self.name, self.timeout, self.deadline = name, timeout, deadline
        self.session = requests.Session()
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, _WatchedAdapter())

    def send(self, method: str, url: str, *, cap: int, what: str, headers: Mapping[str, str] | None = None,
             data: bytes | None = None, authorize: Callable[[str], Mapping[str, str]] = lambda _u: {}) -> Answer:
        """One call, its redirects followed; the final answer with its body (at most ``cap``)."""
        deadline = _Deadline(time.monotonic() + self.deadline)
        seen: set[str] = set()
        _current.deadline = deadline
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                if url in seen:
                    raise RegistryError(f"registry {self.name} redirects {what} in a loop (back to {url})",
                                        hint="the registry or a proxy in front of it is misconfigured")
                seen.add(url)
                answer = self._once(method, url, cap, what, {**(headers or {}), **authorize(url)}, data, deadline)
                location = answer.headers.get("Location")
                if answer.status not in _REDIRECTS or not location:
                    return answer
                url = urljoin(url, location)
                if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                    method, data = "GET", None
            raise RegistryError(f"registry {self.name} redirected {what} more than {MAX_REDIRECTS} times")
        finally:
            _current.deadline = None
            deadline.cancel()

    def _once(self, method: str, url: str, cap: int, what: str, headers: Mapping[str, str],
              data: bytes | None, deadline: _Deadline) -> Answer:
        left = deadline.at - time.monotonic()
        if left <= 0:
            raise self._late(what)
        try:
            resp = self.session.request(method, url, headers=dict(headers), data=data, stream=True,
                                        allow_redirects=False, timeout=(min(self.timeout, left), self.timeout))
        except requests.Timeout:
            raise Unreachable(f"registry {self.name} did not answer within {self.timeout:.0f}s ({what})") from None
        except requests.RequestException as exc:
            if deadline.fired:
                raise self._late(what) from None
            raise Unreachable(f"registry {self.name} cannot be reached: {networds.why(exc)}",
                              hint=f"is the registry running and is {self.name} the right address?") from None
        try:
            body = b"" if method == "HEAD" or resp.status_code in _REDIRECTS else self._body(resp, cap, what, deadline)
            return Answer(resp.status_code, resp.headers, body, url)
        finally:
            resp.close()

    def _body(self, resp: requests.Response, cap: int, what: str, deadline: _Deadline) -> bytes:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise RegistryError(f"registry {self.name} announced {int(declared)} bytes for {what}; "
                                f"more than {cap} bytes is not accepted")
        parts, size = [], 0
        try:
            for chunk in resp.iter_content(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise RegistryError(f"registry {self.name} sent more than {cap} bytes for {what}; "
                                        "the rest was not read")
                parts.append(chunk)
                if time.monotonic() > deadline.at:
                    raise self._late(what)
        except requests.RequestException:
            if deadline.fired:
                raise self._late(what) from None
            raise Unreachable(f"registry {self.name} broke off its answer for {what}") from None
        if deadline.fired:
            raise self._late(what)
        return b"".join(parts)

    def _late(self, what: str) -> Unreachable:
        self.session.close()  # the watchdog broke the connection; do not reuse it
        return Unreachable(f"registry {self.name} did not finish answering {what} within {self.deadline:.0f}s",
                           hint="the registry (or a proxy) is answering very slowly; try again later")
