"""Checks of addresses and files made before any work starts.

Why a module of its own: a malformed registry, DOCKER_HOST, index URL or repository
name used to surface deep inside requests or docker-py as a traceback (or, for a
repository, only at tagging time after a 5-minute build). Each check here raises one
typed error (:class:`~dlbase.errors.AddressError`, :class:`~dlbase.errors.FileProblem`)
that names the value, says what is wrong and how to write it, so the CLI can stop with
exit 2 before anything is built, pushed or written. Nothing here talks to the network.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from dlbase.core import reference
from dlbase.core.errors import AddressError, FileProblem
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


# --------------------------------------------------------------------------- files


def _reason(exc: OSError) -> tuple[str, str]:
    """(what went wrong, what to do) for an OSError on a file."""
    code = exc.errno
    if isinstance(exc, FileNotFoundError):
        return "does not exist", "check the path (run dlbase from the repository root, or set DLBASE_ROOT)"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file", "point at the file itself"
    if isinstance(exc, NotADirectoryError):
        return "has a path part that is a file, not a folder", "remove or rename the file that is in the way"
    if isinstance(exc, PermissionError) or code in (errno.EPERM, errno.EACCES):
        return ("is not accessible (permission denied or immutable)",
                "fix its permissions/owner (ls -l; lsattr for chattr +i) or run as a user that may use it")
    if code == errno.EROFS:
        return "is on a read-only file system", "run where the repository is writable"
    if code == errno.ENOSPC:
        return "cannot be written: no space left on the device", "free disk space and try again"
    return exc.strerror or str(exc), "check the file and try again"


def file_error(path: Path | str, exc: OSError, *, action: str = "read") -> FileProblem:
    """The typed error for an OSError on ``path``: one line with path and reason, a hint."""
    why, hint = _reason(exc)
    return FileProblem(f"cannot {action} {path}: it {why}", hint=hint)


def read_text(path: Path, display: str | None = None, *, what: str = "file") -> str:
    """Read a UTF-8 text file; every way that can fail is a :class:`FileProblem` naming it."""
    name = display or str(path)
    try:
        if path.exists() and not path.is_file() and not path.is_dir():
            raise FileProblem(f"cannot read {what} {name}: it is not a regular file",
                              hint="point at a regular file")
        data = Path(path).read_bytes()
    except OSError as exc:
        raise file_error(name, exc) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FileProblem(f"{name}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                          f"at offset {exc.start})",
                          hint="restore the file (git checkout -- FILE) or save it as UTF-8") from None


def writable_dir(path: Path) -> None:
    """Fail before work starts when ``path`` (a folder dlbase writes into) is not usable."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise FileProblem(f"cannot write into {path}: {probe} is a file, not a folder",
                          hint=f"remove or rename {probe}")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise FileProblem(f"cannot write into {path}: {probe} is not writable",
                          hint="fix its permissions, or run as a user that may write there")


_ID_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{4,64}$")
_SIZE_RE = re.compile(r"^[0-9]+[bkmgBKMG]?$")


def image_ref(value: str, *, where: str = "IMAGE") -> str:
    """An image as the verbs take it: a variant name, an image ID (or its prefix), or a
    reference ``[HOST[:PORT]/]REPO[:TAG][@DIGEST]``. Checked before the daemon is asked,
    whose own answer ("invalid reference format") names no fix."""
    text = value.strip()
    if not _ID_RE.match(text):
        reference.parse(value, where=where)
    return text


def size(value: str, *, where: str) -> str:
    """A Docker size such as 8g, 512m or 1073741824 (bytes)."""
    if not _SIZE_RE.match(value.strip()):
        raise AddressError(f"{where}: '{value}' is not a size",
                           hint="a number with an optional unit b, k, m or g, e.g. 8g or 512m")
    return value.strip()
