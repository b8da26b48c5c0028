"""A small Docker Registry HTTP API v2 client: resolve tags to digests, read manifests.

It needs no Docker daemon: `dlbase pin` asks the registry itself which digest a base tag
points at (so digests are never typed by hand), and publishing reads the manifest back
after a push to check what the registry really holds. Credentials come from the Docker
config file or the environment, never from the command line.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import requests

from dlbase.errors import InvalidInput, RegistryError, Unreachable
from dlbase import validate

DOCKER_HUB = "registry-1.docker.io"
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
_HOST_RE = re.compile(r"^(localhost|[\w-]+(\.[\w-]+)+|[\w.-]+:\d+|\[[0-9a-fA-F:]+\](:\d+)?)$")


@dataclass(frozen=True)
class Reference:
    """registry host, repository path and tag of an image reference."""

    host: str
    repository: str
    tag: str

    @property
    def display(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"


def parse_reference(image: str, tag: str | None = None) -> Reference:
    """Split `docker.io/nvidia/cuda` (+ tag) or `127.0.0.1:5000/x/y:tag` into parts."""
    name = image
    if tag is None:
        if "@" in name:
            raise InvalidInput(f"'{image}' already names a digest; give a tag to resolve")
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = name.rsplit(":", 1)
        else:
            tag = "latest"
    first, _, rest = name.partition("/")
    if rest and (_HOST_RE.match(first) and ("." in first or ":" in first or first == "localhost")):
        host, repo = first, rest
    else:
        host, repo = "docker.io", name
    if host in ("docker.io", "index.docker.io"):
        host = DOCKER_HUB
        if "/" not in repo:
            repo = f"library/{repo}"
    return Reference(host=host, repository=repo, tag=tag)


def is_loopback(host: str) -> bool:
    bare = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return bare in ("localhost", "[::1]") or bare.startswith("127.")


def docker_config_credentials(host: str) -> tuple[str, str] | None:
    """(user, password) for a registry from env or ~/.docker/config.json `auths`."""
    user, password = os.environ.get("DLBASE_REGISTRY_USER"), os.environ.get("DLBASE_REGISTRY_PASSWORD")
    if user and password:
        return user, password
    cfg_dir = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    cfg = cfg_dir / "config.json"
    if not cfg.is_file():
        return None
    try:
        auths = json.loads(cfg.read_text()).get("auths", {})
    except (OSError, json.JSONDecodeError):
        return None
    for key in (host, f"https://{host}", f"http://{host}",
                *(["https://index.docker.io/v1/"] if host == DOCKER_HUB else [])):
        entry = auths.get(key)
        if entry and entry.get("auth"):
            raw = base64.b64decode(entry["auth"]).decode()
            u, _, p = raw.partition(":")
            return u, p
    return None


class RegistryClient:
    """Talks to one registry. Loopback registries are plain HTTP, others HTTPS."""

    def __init__(self, host: str, *, credentials: tuple[str, str] | None = None, timeout: float = 15.0):
        self.host = validate.registry_host(host)  # a URL or bad port: a clear exit 2, not requests' InvalidURL
        self.scheme = "http" if is_loopback(host) else "https"
        self.credentials = credentials if credentials is not None else docker_config_credentials(host)
        self.timeout = timeout
        self.session = requests.Session()
        self._token: str | None = None

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}/v2"

    def _request(self, method: str, url: str, **kw: object) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})  # type: ignore[arg-type]
        for attempt in (1, 2):
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            elif self.credentials:
                kw["auth"] = self.credentials
            try:
                resp = self.session.request(method, url, headers=headers, timeout=self.timeout, **kw)
            except requests.ConnectionError as exc:
                raise Unreachable(f"registry {self.host} cannot be reached ({type(exc).__name__})",
                                  hint=f"is the registry running and is {self.host} the right address?") from None
            except requests.Timeout:
                raise Unreachable(f"registry {self.host} did not answer within {self.timeout:.0f}s") from None
            if resp.status_code == 401 and attempt == 1:
                challenge = resp.headers.get("WWW-Authenticate", "")
                if challenge.lower().startswith("bearer"):
                    self._token = self._fetch_token(challenge)
                    continue
                if challenge.lower().startswith("basic") and not self.credentials:
                    break
            break
        if resp.status_code == 401:
            raise RegistryError(f"registry {self.host} refused the credentials (HTTP 401)",
                                hint="log in with `docker login` or set DLBASE_REGISTRY_USER/DLBASE_REGISTRY_PASSWORD")
        return resp

    def _fetch_token(self, challenge: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise RegistryError(f"registry {self.host} sent an auth challenge without a realm")
        try:
            resp = self.session.get(realm, params=params, auth=self.credentials, timeout=self.timeout)
        except requests.RequestException:
            raise Unreachable(f"token service {realm} of registry {self.host} cannot be reached") from None
        if resp.status_code != 200:
            raise RegistryError(f"token service {realm} answered HTTP {resp.status_code}",
                                hint="check the registry credentials")
        body = resp.json()
        return body.get("token") or body.get("access_token") or ""

    def _expect_found(self, resp: requests.Response, what: str) -> None:
        """404 and any other non-200 answer become a RegistryError naming what was asked."""
        if resp.status_code == 404:
            raise RegistryError(f"{self.host}/{what} does not exist in the registry")
        if resp.status_code != 200:
            raise RegistryError(f"registry {self.host} answered HTTP {resp.status_code} for {what}")

    def manifest_digest(self, repository: str, reference: str) -> str:
        """The digest the registry serves for a tag (index/manifest list when multi-arch)."""
        resp = self._request("HEAD", f"{self.base}/{repository}/manifests/{reference}",
                             headers={"Accept": MANIFEST_TYPES})
        self._expect_found(resp, f"{repository}:{reference}")
        digest = resp.headers.get("Docker-Content-Digest")
        if not digest:  # some registries omit the header on HEAD; GET and hash the body
            return self.manifest(repository, reference)[1]
        return digest

    def manifest(self, repository: str, reference: str) -> tuple[dict, str]:
        """(manifest JSON, digest computed from its bytes) - the digest is checked, not trusted."""
        import hashlib

        resp = self._request("GET", f"{self.base}/{repository}/manifests/{reference}",
                             headers={"Accept": MANIFEST_TYPES})
        self._expect_found(resp, f"{repository}{'@' if reference.startswith('sha256:') else ':'}{reference}")
        digest = "sha256:" + hashlib.sha256(resp.content).hexdigest()
        return resp.json(), digest

    def tag_digest_or_none(self, repository: str, tag: str) -> str | None:
        try:
            return self.manifest_digest(repository, tag)
        except RegistryError as exc:
            if "does not exist" in exc.message:
                return None
            raise
