"""Which URLs dlbase itself downloads from: https, or plain http to this machine only.

Why a module of its own: what dlbase fetches decides what it writes (an OSV database that
decides whether a scan is clean, wheel metadata that becomes compat.yaml's facts). Over
plain http from the network either can be swapped in transit, and ``ftp://``, ``file://``
or a URL without a host is no index at all. Every verb that fetches over HTTP with its own
client (`scan --update`, `compat add`) asks this one rule, so one refuses what the other
refuses. Loopback http stays allowed: a test's server or a local mirror on 127.0.0.1.
(uv, which `lock` runs, applies its own rules to the indexes it is given.)
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dlbase.core.errors import AddressError
from dlbase.core.reference import is_loopback


def allowed(url: str) -> bool:
    """https, or plain http to this machine (a test's server, a local mirror)."""
    parts = urlsplit(url.strip())
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and bool(parts.hostname) and is_loopback(parts.netloc.rpartition("@")[2])


def fetch_url(url: str, *, where: str, example: str) -> str:
    """``url`` without a trailing slash when dlbase may fetch from it; AddressError (exit 2)
    naming ``where`` (the option or file it came from) otherwise."""
    if allowed(url):
        return url.strip().rstrip("/")
    parts = urlsplit(url.strip())
    if parts.scheme == "http" and parts.hostname:
        why = "plain http to another host can be changed in transit; only https (or http on a loopback host " \
              "such as 127.0.0.1) is fetched"
    elif parts.scheme and parts.scheme not in ("http", "https"):
        why = f"{parts.scheme}:// is not fetched; only https (or http on a loopback host such as 127.0.0.1) is"
    else:
        why = "it is not an http(s) URL with a host"
    raise AddressError(f"{where} {url!r}: {why}", hint=f"use {example} or an https mirror of it")
