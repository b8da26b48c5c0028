"""Why a network request failed, in words, for error messages.

Why a module of its own: a failed request surfaces as a chain of library exceptions
("ConnectionError: HTTPConnectionPool(host=..., port=...): Max retries exceeded ...
(Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f...>'))").
Neither the class name nor that text tells a user what happened. Every reader that talks
to an index, a registry or a server it started says it the same way: from here.
"""

from __future__ import annotations

import errno
import socket

import requests

_OS_WORDS = {errno.ECONNREFUSED: "the connection was refused (nothing listens there)",
             errno.ECONNRESET: "the connection was reset",
             errno.EHOSTUNREACH: "the host cannot be reached (no route)",
             errno.ENETUNREACH: "the network cannot be reached (no route)",
             errno.ETIMEDOUT: "connecting timed out"}


def _os_reason(exc: BaseException, depth: int = 0) -> str | None:
    """The OSError at the bottom of a requests/urllib3 chain, in words."""
    if depth > 8:
        return None
    if isinstance(exc, socket.gaierror):
        return "the host name cannot be resolved"
    if isinstance(exc, OSError) and exc.errno in _OS_WORDS:
        return _OS_WORDS[exc.errno]
    inner = [a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)]
    for nxt in (*inner, getattr(exc, "reason", None), exc.__cause__, exc.__context__):
        if isinstance(nxt, BaseException) and nxt is not exc:
            found = _os_reason(nxt, depth + 1)
            if found:
                return found
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return None


def why(exc: BaseException) -> str:
    """'the connection was refused (nothing listens there)', 'TLS failed: ...', 'timed out'..."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed (certificate or protocol)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, requests.exceptions.Timeout):
        return "it stopped answering (timed out)"
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy failed: " + (_os_reason(exc) or "it refused the request")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return "the answer was cut off or garbled"
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return "it redirected too many times"
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return "the address is not a URL dlbase can fetch"
    return _os_reason(exc) or "the request failed"
