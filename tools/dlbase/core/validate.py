"""Checks of addresses made before any work starts.

Why a module of its own: a malformed registry, DOCKER_HOST, index URL or repository
name used to surface deep inside requests or docker-py as a traceback (or, for a
repository, only at tagging time after a 5-minute build). Each check here raises one
typed error (:class:`~dlbase.core.errors.AddressError`)
that names the value, says what is wrong and how to write it, so the CLI can stop with
exit 2 before anything is built, pushed or written. Nothing here talks to the network.
Files that cannot be read or written are :mod:`dlbase.core.fileerrors`' concern.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from dlbase.core import reference, sizes
from dlbase.core.errors import AddressError
from dlbase.core.reference import split_host_port

DOCKER_HOST_SCHEMES = ("unix", "tcp", "http", "https", "ssh", "npipe")


def registry_host(value: str) -> str:
    """A registry as the CLI takes it: HOST[:PORT], no scheme, no path. Returns it unchanged.

    A URL is the most common mistake (``http://127.0.0.1:5000``); the message says what to
    type instead rather than letting requests build ``http://http://...``.
    """
    text = value.strip()
    hint = "give the registry as HOST[:PORT], e.g. 127.0.0.1:5000 or registry.example.com"
    if not text:
        raise AddressError("the registry is empty", hint=hint)
    if "://" in text:
        parts = urlsplit(text)
        fixed = parts.netloc or "HOST[:PORT]"
        raise AddressError(f"registry '{value}' is a URL, not HOST[:PORT]",
                           hint=f"drop the scheme{' and the path' if parts.path.strip('/') else ''}: "
                                f"--registry {fixed} (loopback registries are used over plain HTTP, "
                                "others over HTTPS)")
    if "/" in text:
        raise AddressError(f"registry '{value}' has a path; only HOST[:PORT] names a registry",
                           hint=f"--registry {text.split('/', 1)[0]} (the repository comes from the matrix "
                                "or --repository)")
    split_host_port(text, what="registry", value=value, hint=hint)
    return text


def docker_host(value: str | None) -> None:
    """Validate DOCKER_HOST (when set) so docker-py never fails on it with a traceback."""
    if value is None or not value.strip():
        return
    hint = ("set DOCKER_HOST to unix:///var/run/docker.sock, tcp://HOST:PORT or ssh://USER@HOST, "
            "or unset it to use the local daemon")
    text = value.strip()
    if "://" not in text:  # docker-py reads a bare HOST:PORT as tcp://HOST:PORT
        text = "tcp://" + text
    parts = urlsplit(text)
    if parts.scheme not in DOCKER_HOST_SCHEMES:
        raise AddressError(f"DOCKER_HOST '{value}' has no supported scheme "
                           f"({', '.join(s + '://' for s in DOCKER_HOST_SCHEMES)})", hint=hint)
    if parts.scheme in ("unix", "npipe"):
        if not parts.path:
            raise AddressError(f"DOCKER_HOST '{value}' names no socket path", hint=hint)
        return
    netloc = parts.netloc.rpartition("@")[2]
    if not netloc:
        raise AddressError(f"DOCKER_HOST '{value}' names no host", hint=hint)
    split_host_port(netloc, what="DOCKER_HOST", value=value, hint=hint)


def index_url(value: str, *, what: str = "index URL", example: str = "https://pypi.org/simple") -> str:
    """An http(s) URL (a wheel index, a Debian mirror) with a valid host and port."""
    hint = f"use an http(s) URL such as {example}"
    parts = urlsplit(value.strip())
    if parts.scheme == "file":
        return value
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AddressError(f"{what} '{value}' is not an http(s) URL", hint=hint)
    split_host_port(parts.netloc.rpartition("@")[2], what=what, value=value, hint=hint)
    return value


def repository(value: str, *, where: str = "--repository") -> str:
    """A repository name (``dlbase/pytorch``, ``127.0.0.1:5000/team/pytorch``) in the
    reference grammar of :mod:`dlbase.core.reference`; checked before a build, not at
    tagging time."""
    reference.parse_repository(value, where=where)
    return value.strip()


def tag(value: str, *, where: str) -> str:
    """A Docker tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}."""
    return reference.check_tag(value, where=where)


_ID_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{4,64}\Z")


def image_ref(value: str, *, where: str = "IMAGE") -> str:
    """An image as the verbs take it: a variant name, an image ID (or its prefix), or a
    reference ``[HOST[:PORT]/]REPO[:TAG][@DIGEST]``. Checked before the daemon is asked,
    whose own answer ("invalid reference format") names no fix."""
    text = value.strip()
    if not _ID_RE.match(text):
        reference.parse(value, where=where)
    return text


def size(value: str, *, where: str) -> str:
    """A ``--shm-size`` such as 8g, 512m or 1073741824 (bytes), in the canonical form the
    daemon gets; the grammar (and why zero is refused) is :mod:`dlbase.core.sizes`'."""
    return sizes.canonical(sizes.shm_option(value, where=where))
