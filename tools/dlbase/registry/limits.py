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
  per URL; a redirect loop or more than :data:`MAXREDIRECTS` hops is a registry error.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping
from urllib.parse import urljoin, urlsplit

import requests

from dlbase.core import deadline as deadlines
from dlbase.core.httpget import MAXREDIRECTS, REDIRECTS, Answer
from dlbase.core import networds
from dlbase.core.errors import RegistryError, Unreachable

MANIFEST_MAX = 4 << 20  # registries themselves refuse manifests above 4 MiB
JSON_MAX = 1 << 20  # a tag-list page, a token answer, an error body
BLOB_MAX = 64 << 20  # signature and attestation blobs (an SBOM is the largest, ~1 MiB)
DEADLINE_S = 60.0
_CHUNK = 64 << 10


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL: what "the same server" means for credentials."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class BoundedHttp:
    """HTTP calls to one registry with caps, deadlines and per-hop authorization."""

    def __init__(self, name: str, *, timeout: float, deadline: float = DEADLINE_S):
        self.name, self.timeout, self.deadline = name, timeout, deadline
        self.session = deadlines.session()

    def send(self, method: str, url: str, *, cap: int, what: str, headers: Mapping[str, str] | None = None,
             data: bytes | None = None, authorize: Callable[[str], Mapping[str, str]] = lambda _u: {}) -> Answer:
        """One call, its redirects followed; the final answer with its body (at most ``cap``)."""
        seen: set[str] = set()
        with deadlines.within(f"registry {self.name} ({what})", self.deadline) as deadline:
            for _hop in range(MAXREDIRECTS + 1):
                if url in seen:
                    raise RegistryError(f"registry {self.name} redirects {what} in a loop (back to {url})",
                                        hint="the registry or a proxy in front of it is misconfigured")
                seen.add(url)
                answer = self._once(method, url, cap, what, {**(headers or {}), **authorize(url)}, data, deadline)
                location = answer.headers.get("Location")
                if answer.status not in REDIRECTS or not location:
                    return answer
                url = urljoin(url, location)
                if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                    method, data = "GET", None
            raise RegistryError(f"registry {self.name} redirected {what} more than {MAXREDIRECTS} times")

    def _once(self, method: str, url: str, cap: int, what: str, headers: Mapping[str, str],
              data: bytes | None, deadline: deadlines.Deadline) -> Answer:
        left = deadline.at - time.monotonic()
        if left <= 0:
            raise self._late(what, deadline)
        try:
            resp = self.session.request(method, url, headers=dict(headers), data=data, stream=True,
                                        allow_redirects=False, timeout=(min(self.timeout, left), self.timeout))
        except requests.Timeout:
            raise Unreachable(f"registry {self.name} did not answer within {self.timeout:.0f}s ({what})") from None
        except requests.RequestException as exc:
            if deadline.fired:
                raise self._late(what, deadline) from None
            raise Unreachable(f"registry {self.name} cannot be reached : {networds.why(exc)}",
                              hint=f"is the registry running and is {self.name} the right address?") from None
        try:
            body = b"" if method == "HEAD" or resp.status_code in REDIRECTS else self._body(resp, cap, what, deadline)
            return Answer(resp.status_code, resp.headers, body, url)
        finally:
            resp.close()

    def _body(self, resp: requests.Response, cap: int, what: str, deadline: deadlines.Deadline) -> bytes:
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
                    raise self._late(what, deadline)
        except requests.RequestException:
            if deadline.fired:
                raise self._late(what, deadline) from None
            raise Unreachable(f"registry {self.name} broke off its answer for {what}") from None
        if deadline.fired:
            raise self._late(what, deadline)
        return b"".join(parts)

    def _late(self, what: str, deadline: deadlines.Deadline) -> Unreachable:
        self.session.close()  # the watchdog broke the connection; do not reuse it
        return Unreachable(f"registry {self.name} did not finish answering {what} within {deadline.limit:g}s",
                           hint="the registry (or a proxy) is answering very slowly; try again later")
