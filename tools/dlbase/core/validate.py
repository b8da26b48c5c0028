"""Checks of addresses made before any work starts.

Why a module of its own: a malformed registry, DOCKER_HOST, index URL or repository
name used to surface deep inside requests or docker-py as a traceback (or, for a
repository, only at tagging time after a 5-minute build). Each check here raises one
typed error (:class:`~dlbase.errors.AddressError`)
that names the value, says what is wrong and how to write it, so the CLI can stop with
exit 2 before anything is built, pushed or written. Nothing here talks to the network.
Files that cannot be read or written are :mod:`dlbase.core.fileerrors`' concern.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from dlbase.core import sizes
from dlbase.core.errors import AddressError

# The Docker reference grammar (distribution/reference): a path of lower-case components
# separated by '/', each [a-z0-9]+ joined by '.', '_', '__' or runs of '-'; an optional
# registry domain first (it has a '.', a ':' or is 'localhost').
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(rf"^(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9a-fA-F:.]+\])$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DOCKER_HOST_SCHEMES = ("unix", "tcp", "http", "https", "ssh", "npipe")


def _port(text: str, what: str, value: str, hint: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise AddressError(f"{what} '{value}': port '{text}' is not a number from 1 to 65535", hint=hint)
    return int(text)


def _split_host_port(hostport: str, what: str, value: str, hint: str) -> tuple[str, int | None]:
    host, port = hostport, None
    if hostport.startswith("["):  # [::1]:5000
        end = hostport.find("]")
        host, rest = hostport[:end + 1], hostport[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise AddressError(f"{what} '{value}' is not HOST[:PORT]", hint=hint)
            port = _port(rest[1:], what, value, hint)
    elif ":" in hostport:
        host, _, p = hostport.rpartition(":")
        port = _port(p, what, value, hint)
    if not host or not _HOST_RE.match(host):
        raise AddressError(f"{what} '{value}': '{host}' is not a host name or IP address", hint=hint)
    return host, port


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
    _split_host_port(text, "registry", value, hint)
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
    _split_host_port(netloc, "DOCKER_HOST", value, hint)


def index_url(value: str, *, what: str = "index URL", example: str = "https://pypi.org/simple") -> str:
    """An http(s) URL (a wheel index, a Debian mirror) with a valid host and port."""
    hint = f"use an http(s) URL such as {example}"
    parts = urlsplit(value.strip())
    if parts.scheme == "file":
        return value
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AddressError(f"{what} '{value}' is not an http(s) URL", hint=hint)
    _split_host_port(parts.netloc.rpartition("@")[2], what, value, hint)
    return value


def repository(value: str, *, where: str = "--repository") -> str:
    """A repository name in the Docker reference grammar (``dlbase/pytorch``,
    ``127.0.0.1:5000/team/pytorch``); checked before a build, not at tagging time."""
    hint = ("a repository is lower-case letters and digits, separated by '.', '_', '__' or '-', "
            "in '/'-separated parts, optionally after a registry host: e.g. dlbase/pytorch")
    text = value.strip()
    if not text or len(text) > 255:
        raise AddressError(f"{where}: repository '{value}' is empty or longer than 255 characters", hint=hint)
    first, sep, rest = text.partition("/")
    path = text
    if sep and ("." in first or ":" in first or first == "localhost"):
        _split_host_port(first, where, value, hint)
        path = rest
    if not _PATH_RE.match(path):
        why = ("has upper-case letters" if path.lower() != path and _PATH_RE.match(path.lower())
               else "has a character or separator that Docker does not allow")
        if ":" in path or "@" in path:
            why = "has a tag or digest; give the repository alone"
        raise AddressError(f"{where}: '{value}' is not a valid repository name ({why})", hint=hint)
    return text


def tag(value: str, *, where: str) -> str:
    """A Docker tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}."""
    if not _TAG_RE.match(value):
        raise AddressError(f"{where}: '{value}' is not a valid image tag",
                           hint="a tag is up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")
    return value


_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_ID_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{4,64}$")


def image_ref(value: str, *, where: str = "IMAGE") -> str:
    """An image as the verbs take it: a variant name, an image ID (or its prefix), or a
    reference ``[HOST[:PORT]/]REPO[:TAG][@DIGEST]``. Checked before the daemon is asked,
    whose own answer ("invalid reference format") names no fix."""
    hint = ("give a variant name (see `dlbase check`), an image ID, or a reference like "
            "dlbase/pytorch:TAG or REPO@sha256:DIGEST (lower-case repository)")
    text = value.strip()
    if not text:
        raise AddressError(f"{where}: an empty image name", hint=hint)
    if _ID_RE.match(text):
        return text
    name, at, digest = text.partition("@")
    if at and not _DIGEST_RE.match(digest):
        raise AddressError(f"{where}: '{value}' has a malformed digest after '@'", hint=hint)
    last = name.rsplit("/", 1)[-1]
    repo, tag_text = name, None
    if ":" in last:
        repo, _, tag_text = name.rpartition(":")
    try:
        repository(repo, where=where)
        if tag_text is not None:
            tag(tag_text, where=where)
    except AddressError as exc:
        why = exc.message.split("(", 1)[-1].rstrip(")") if "(" in exc.message else "malformed"
        why = "a misplaced ':'" if "tag or digest" in why else why
        raise AddressError(f"{where}: '{value}' is not an image reference ({why})", hint=hint) from None
    return text


def size(value: str, *, where: str) -> str:
    """A ``--shm-size`` such as 8g, 512m or 1073741824 (bytes), in the canonical form the
    daemon gets; the grammar (and why zero is refused) is :mod:`dlbase.core.sizes`'."""
    return sizes.canonical(sizes.shm_option(value, where=where))
