"""Image references (``[HOST[:PORT]/]REPO[:TAG][@DIGEST]``) and their parts, in one place.

Why one module: the reference used to be split by hand in five places that disagreed
(``host/repo:tag@sha256:...`` gave repository ``repo:tag``; ``x/y@sha256:...`` silently
meant Docker Hub; ``'::'`` and ``http://HOST/x/y:1`` went to the network). This is the
grammar of distribution's ``reference`` package, which the Docker daemon and every
registry apply, checked before any network or daemon call:

- a registry host comes first only when the first ``/``-part has a ``.`` or a ``:`` or
  is ``localhost`` (``dlbase/pytorch`` is a Docker Hub repository, ``127.0.0.1:5000/x``
  is not); the host is a domain name or ``[IPv6]``, the port 1-65535;
- the repository is ``/``-separated components of ``[a-z0-9]+`` joined by ``.``, ``_``,
  ``__`` or runs of ``-``, the whole name at most 255 characters;
- a tag is ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``; a digest follows :mod:`dlbase.core.digest`.

Every refusal is a :class:`ReferenceError` (invalid input, exit 2) whose message says
which part is wrong and why. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from dlbase.core import digest as digests
from dlbase.core.errors import AddressError

DOCKER_HUB = "docker.io"
#: Where Docker Hub's registry API answers (``docker.io`` names it in references).
DOCKER_HUB_API = "registry-1.docker.io"
NAME_MAX = 255
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(rf"^(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9a-fA-F:.]+\])\Z")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
HINT = ("write [HOST[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. 127.0.0.1:5000/dlbase/pytorch:TAG: "
        "a lower-case repository, no scheme")
TAG_HINT = "a tag is up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"


class ReferenceError(AddressError):
    """A malformed image reference, repository, tag or registry address (exit 2)."""


@dataclass(frozen=True)
class Reference:
    """The parts of an image reference, as written (see :meth:`normalized` for Docker Hub's
    spelled-out form).

    ``registry`` is HOST[:PORT], or None when the reference names no registry (Docker Hub).
    """

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``[REGISTRY/]REPOSITORY``: what `docker push`/`pull` take before ``:tag``/``@digest``."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def canonical(self) -> str:
        """The whole reference, ``NAME[:TAG][@DIGEST]``."""
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.canonical

    @property
    def host(self) -> str:
        """The registry the reference means: Docker Hub when it names none."""
        return self.registry or DOCKER_HUB

    def normalized(self) -> Reference:
        """Docker Hub spelled out (``ubuntu`` -> ``docker.io/library/ubuntu``), as
        distribution's ParseNormalizedNamed does; other registries unchanged."""
        registry = DOCKER_HUB if self.registry in (None, "index.docker.io") else self.registry
        repository = self.repository
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        return replace(self, registry=registry, repository=repository)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=check_digest(digest, where=self.canonical))


def is_registry_host(first: str) -> bool:
    """Is ``first`` (the part before the first ``/``) a registry host rather than a
    repository component? Docker's rule: it has a ``.`` or a ``:``, or is ``localhost``."""
    return "." in first or ":" in first or first == "localhost"


def split_host_port(hostport: str, *, what: str, value: str, hint: str) -> tuple[str, int | None]:
    """(host, port or None) of ``HOST[:PORT]`` or ``[IPv6][:PORT]``; a ReferenceError naming
    ``what`` and ``value`` when either part is malformed."""
    host, port = hostport, None
    if hostport.startswith("["):  # [::1]:5000
        end = hostport.find("]")
        host, rest = (hostport[:end + 1], hostport[end + 1:]) if end > 0 else (hostport, "")
        if rest:
            if not rest.startswith(":"):
                raise ReferenceError(f"{what} '{value}' is not HOST[:PORT]", hint=hint)
            port = _port(rest[1:], what, value, hint)
    elif ":" in hostport:
        host, _, text = hostport.rpartition(":")
        port = _port(text, what, value, hint)
    if not host or not _HOST_RE.match(host):
        raise ReferenceError(f"{what} '{value}': '{host}' is not a host name or IP address", hint=hint)
    return host, port


def _port(text: str, what: str, value: str, hint: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ReferenceError(f"{what} '{value}': port '{text}' is not a number from 1 to 65535", hint=hint)
    return int(text)


def _path_problem(path: str) -> str | None:
    """Why ``path`` is not a repository path, or None."""
    for part in path.split("/"):
        if not part:
            return "has an empty '/'-separated part"
        if not _COMPONENT_RE.match(part):
            if _COMPONENT_RE.match(part.lower()):
                return "has upper-case letters; repositories are lower-case"
            bad = sorted({c for c in part if not (c.isascii() and (c.isalnum() or c in "._-"))})
            if bad:
                return f"has a character Docker does not allow ({' '.join(repr(c) for c in bad)})"
            return f"'{part}' starts or ends with a separator, or joins them wrongly"
    return None


def parse(text: str, *, where: str = "reference") -> Reference:
    """``[HOST[:PORT]/]REPO[:TAG][@DIGEST]`` -> :class:`Reference`; ReferenceError saying why not."""
    value = text
    text = text.strip()
    if not text:
        raise ReferenceError(f"{where}: an empty image name", hint=HINT)
    if "://" in text:
        bare = text.split("://", 1)[1]
        raise ReferenceError(f"{where}: '{value}' is a URL, not an image reference",
                             hint=f"drop the scheme: {bare or 'HOST/REPOSITORY:TAG'} (loopback registries "
                                  "are used over plain HTTP, others over HTTPS)")
    name, at, digest_text = text.partition("@")
    if at:
        why = digests.problem(digest_text)
        if why:
            raise ReferenceError(f"{where}: '{value}' has a malformed digest after '@': {why}", hint=HINT)
    slash = name.rfind("/")
    tag = None
    if name.rfind(":") > slash:
        name, _, tag = name.rpartition(":")
    ref = _name(name, where=where, value=value)  # the name first: its reason is the more basic one
    if tag is not None and not _TAG_RE.match(tag):
        raise ReferenceError(f"{where}: '{value}' is not an image reference (tag '{tag}' is not a valid tag)",
                             hint=TAG_HINT)
    return replace(ref, tag=tag, digest=digest_text or None)


def _name(name: str, *, where: str, value: str) -> Reference:
    if len(name) > NAME_MAX:
        raise ReferenceError(f"{where}: '{value}' is not an image reference (the name is longer than "
                             f"{NAME_MAX} characters)", hint=HINT)
    first, sep, rest = name.partition("/")
    registry, path = None, name
    if sep and is_registry_host(first):
        split_host_port(first, what=f"{where}: registry", value=first, hint=HINT)
        registry, path = first, rest
    problem = _path_problem(path) if path else None
    if not path or problem:
        why = f"the repository {problem}" if problem else "it names no repository"
        raise ReferenceError(f"{where}: '{value}' is not an image reference ({why})", hint=HINT)
    return Reference(registry=registry, repository=path)


def parse_repository(text: str, *, where: str = "repository") -> Reference:
    """``[HOST[:PORT]/]REPO`` alone (a matrix's or --repository's value): no tag, no digest."""
    ref = parse(text, where=where)
    if ref.tag or ref.digest:
        raise ReferenceError(f"{where}: '{text}' has a tag or digest; give the repository alone",
                             hint=f"e.g. {ref.name}")
    return ref


def check_tag(text: str, *, where: str) -> str:
    if not _TAG_RE.match(text):
        raise ReferenceError(f"{where}: '{text}' is not a valid image tag", hint=TAG_HINT)
    return text


def check_digest(text: str, *, where: str) -> str:
    why = digests.problem(text)
    if why:
        raise ReferenceError(f"{where}: '{text}' is not a digest: {why}",
                             hint="a digest is sha256: followed by 64 lower-case hex digits")
    return text


def is_loopback(host: str) -> bool:
    """Is HOST[:PORT] (or [IPv6][:PORT]) this machine: ``localhost`` or a loopback address.

    One rule for every "plain http is fine here" decision (registries, the vulnerability
    database download): ``127.evil.example`` is a name, not a loopback address."""
    try:
        name, _port = split_host_port(host, what="registry", value=host, hint="")
    except AddressError:  # not a host at all, so not this machine
        return False
    name = name.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
