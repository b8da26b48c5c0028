"""GET from a package index or a database mirror: one deadline, redirects checked, bodies bounded.

Why one place: the OSV download, the simple-index listing and the wheel-metadata reads
each had their own ``requests.get``, each with a per-read timeout (a server sending one
byte every 5 s held them forever), ``requests``' own redirect following (an https URL
redirected to plain http was followed, so a database could be swapped in transit) and,
for range reads, no cap (a mirror that ignores ``Range`` sent a whole 900 MB wheel into
memory). Here every call runs under :func:`dlbase.core.deadline.within`, redirects are
followed by hand and refused when they lead somewhere less safe (https to plain http,
this machine to plain http elsewhere), and a body is read only as far as its cap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from dlbase.core import deadline as deadlines
from dlbase.core.errors import BadAnswer, Unreachable
from dlbase.core import networds, urlpolicy

#: Seconds one operation (its redirects, headers and body) may take unless told otherwise.
DEADLINE_S = 60.0
#: Seconds one socket read may wait (the deadline bounds the whole operation).
READ_TIMEOUT_S = 30.0
MAXREDIRECTS = 5
CHUNK = 64 << 10
REDIRECTS = (301, 302, 303, 307, 308)


class Broken(Unreachable):
    """The connection failed or broke off (worth another try, unlike a passed deadline)."""


class TooSlow(Unreachable):
    """The operation's deadline passed."""


@dataclass(frozen=True)
class Answer:
    """A server's answer with its body read (at most the caller's cap); the registry
    client's answers too."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


#: https, or plain http to this machine: the one rule (core/urlpolicy) every fetch obeys.
allowed = urlpolicy.allowed


def _check_hop(previous: str, url: str) -> None:
    """A redirect may not lead somewhere less safe than where it came from: not from https
    to plain http, not from this machine to plain http elsewhere, never off http(s)."""
    before, after = urlsplit(previous), urlsplit(url)
    if before.scheme == "https" and after.scheme != "https":
        raise BadAnswer(f"{previous} redirects to {url}: a redirect from https to plain http is not followed",
                        hint="the server (or a proxy in front of it) downgrades the connection; "
                             "use a mirror that stays on https")
    if after.scheme not in ("http", "https") or not after.hostname \
            or (allowed(previous) and not allowed(url)):
        raise BadAnswer(f"{previous} redirects to {url}: not followed (plain http only to a loopback host)",
                        hint="use an https mirror")


@contextlib.contextmanager
def stream(session: requests.Session, url: str, *, what: str, limit: float = DEADLINE_S,
           headers: Mapping[str, str] | None = None, method: str = "GET",
           read_timeout: float = READ_TIMEOUT_S) -> Iterator[requests.Response]:
    """The final answer to ``url`` (redirects followed by hand, see :func:`_check_hop`),
    its body not yet read.

    The whole block, reading the body included, runs under one deadline of ``limit``
    seconds: read the body with :func:`chunks` so a passed deadline is reported as such."""
    deadlines.watch(session)
    with deadlines.within(what, limit):
        resp = None
        try:
            for _hop in range(MAXREDIRECTS + 1):
                resp = _request(session, method, url, headers, what, read_timeout)
                location = resp.headers.get("Location")
                if resp.status_code not in REDIRECTS or not location:
                    break
                resp.close()
                target = urljoin(url, location)
                _check_hop(url, target)
                url = target
            else:
                raise BadAnswer(f"{what}: more than {MAXREDIRECTS} redirects (last to {url})")
            yield resp
        finally:
            if resp is not None:
                resp.close()


def _request(session: requests.Session, method: str, url: str, headers: Mapping[str, str] | None,
             what: str, read_timeout: float) -> requests.Response:
    deadline = deadlines.current()
    left = deadline.left() if deadline is not None else DEADLINE_S
    if left <= 0:
        raise late(url, what)
    try:
        return session.request(method, url, headers=dict(headers or {}), stream=True, allow_redirects=False,
                               timeout=(min(read_timeout, left), min(read_timeout, left)))
    except requests.RequestException as exc:
        raise failed(url, what, exc) from None


def chunks(resp: requests.Response, *, what: str, cap: int | None = None, size: int = CHUNK) -> Iterator[bytes]:
    """The body of ``resp`` in pieces, stopping with an error past ``cap`` bytes or the deadline."""
    declared = resp.headers.get("Content-Length", "")
    if cap is not None and declared.isdigit() and int(declared) > cap:
        raise BadAnswer(f"{resp.url} announced {int(declared)} bytes for {what}; more than {cap} is not read")
    got = 0
    try:
        for chunk in resp.iter_content(size):
            got += len(chunk)
            if cap is not None and got > cap:
                raise BadAnswer(f"{resp.url} sent more than {cap} bytes for {what}; the rest was not read")
            if deadlines.expired():
                raise late(resp.url, what)
            yield chunk
    except requests.RequestException as exc:
        raise failed(resp.url, what, exc) from None
    if deadlines.expired():
        raise late(resp.url, what)


def get(session: requests.Session, url: str, *, what: str, cap: int, limit: float = DEADLINE_S,
        headers: Mapping[str, str] | None = None, method: str = "GET",
        read_timeout: float = READ_TIMEOUT_S) -> Answer:
    """One call (redirects followed) with its body read whole, at most ``cap`` bytes."""
    with stream(session, url, what=what, limit=limit, headers=headers, method=method,
                read_timeout=read_timeout) as resp:
        body = b"" if method == "HEAD" else b"".join(chunks(resp, what=what, cap=cap))
        return Answer(resp.status_code, resp.headers, body, resp.url)


def late(url: str, what: str) -> TooSlow:
    deadline = deadlines.current()
    limit = f"{deadline.limit:g}s" if deadline is not None else "its deadline"
    return TooSlow(f"{url} did not finish answering within {limit} ({what})",
                       hint=f"the server (or a proxy) answers very slowly; try again later or another mirror "
                            f"(${deadlines.ENV_VAR} sets the deadline in seconds)")


def failed(url: str, what: str, exc: Exception) -> Unreachable:
    if deadlines.expired():
        return late(url, what)
    return Broken(f"cannot read {url} ({what}): {networds.why(exc)}",
                  hint="check this machine's network and proxy, and the address")
