"""Which server may see which secret: credentials and tokens go only where they belong.

Rules (as the Docker client keeps them, stated once):

- Basic credentials and the bearer token go to the registry's own origin (scheme, host,
  port) and nowhere else: not to a ``Link`` of another host, not to a ``Location``
  redirect to another host (blob storage behind a redirect gets no secret);
- Basic credentials go to the token service (the challenge's ``realm``) only when it is
  on the registry's site (same host, or the same last two DNS labels: Docker Hub's
  ``auth.docker.io`` for ``registry-1.docker.io``) and over HTTPS (plain HTTP only on
  loopback); otherwise the token is asked for anonymously;
- plain HTTP is used only for loopback registries, judged on the parsed host
  (``127.evil.example`` is a DNS name, not a loopback address).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from urllib.parse import urlsplit

from dlbase.core.errors import RegistryError
from dlbase.core.reference import is_loopback, split_host_port  # noqa: F401 - is_loopback: re-exported

_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


def _site(host: str) -> str:
    """The last two DNS labels of a name (an IP address is its own site)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        return ".".join(host.lower().rstrip(".").split(".")[-2:])


def same_site(a: str, b: str) -> bool:
    return a.lower() == b.lower() or _site(a) == _site(b)


def basic(credentials: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()


def bearer_challenge(header: str, registry: str) -> tuple[str, dict[str, str]]:
    """(realm URL, the other parameters) of a ``WWW-Authenticate: Bearer ...`` header;
    RegistryError when the realm is missing or is not an http(s) URL one may talk to."""
    params = dict(_PARAM_RE.findall(header))
    realm = params.pop("realm", "")
    parts = urlsplit(realm)
    if not realm:
        raise RegistryError(f"registry {registry} sent an auth challenge without a realm")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RegistryError(f"registry {registry} names token service {realm!r}, which is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.netloc):
        raise RegistryError(f"registry {registry} names a token service over plain HTTP ({realm}); "
                            "tokens are fetched over HTTPS only",
                            hint="configure the registry's token realm as an https:// URL")
    return realm, params


def may_send_credentials_to_realm(realm: str, registry_host: str) -> bool:
    host = urlsplit(realm).hostname or ""
    registry_name = split_host_port(registry_host, what="registry", value=registry_host, hint="")[0].strip("[]")
    return same_site(host, registry_name)
