"""A small Docker Registry HTTP API v2 client: resolve tags to digests, read manifests.

It needs no Docker daemon: `dlbase pin` asks the registry itself which digest a base tag
points at (so digests are never typed by hand), and publishing reads the manifest back
after a push to check what the registry really holds. Credentials come from the Docker
config file or the environment, never from the command line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import docker.auth
import docker.errors
import requests

from dlbase.core.errors import InvalidInput, RegistryError, Unreachable
from dlbase.core import validate

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
    """(user, password) for a registry: DLBASE_REGISTRY_USER/_PASSWORD, else what `docker
    login` stored -- an ``auths`` entry, or the credential helper the config names
    (``credHelpers`` for this registry, ``credsStore`` for all), resolved by docker-py's
    own ``docker.auth`` exactly as the Docker client does. None when there is none (or
    the helper fails: the registry's 401 then says what is missing)."""
    user, password = os.environ.get("DLBASE_REGISTRY_USER"), os.environ.get("DLBASE_REGISTRY_PASSWORD")
    if user and password:
        return user, password
    try:
        entry = docker.auth.load_config().resolve_authconfig(docker.auth.INDEX_NAME if host == DOCKER_HUB else host)
    except docker.errors.DockerException:
        return None
    # docker-py spells an ``auths`` entry's keys in lower case and a helper's capitalised.
    user = (entry or {}).get("Username") or (entry or {}).get("username")
    password = (entry or {}).get("Password") or (entry or {}).get("password")
    return (str(user), str(password)) if user and password is not None else None


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

    def ping(self) -> int:
        """The HTTP status of ``GET /v2/`` (200: the registry answers the v2 API).
        Unreachable when nothing listens there, RegistryError when it refuses the login."""
        return self._request("GET", f"{self.base}/").status_code

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

    # ---- writing (signatures and attestations; trust/store.py) ----------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        resp = self._request("HEAD", f"{self.base}/{repository}/blobs/{digest}")
        return resp.status_code == 200

    def blob(self, repository: str, digest: str, *, max_bytes: int = 64 << 20) -> bytes:
        """A blob's bytes, checked against its digest (a registry is not trusted either)."""
        import hashlib

        resp = self._request("GET", f"{self.base}/{repository}/blobs/{digest}")
        self._expect_found(resp, f"{repository}@{digest} (blob)")
        data = resp.content[: max_bytes + 1]
        if len(data) > max_bytes:
            raise RegistryError(f"blob {digest} of {repository} is larger than {max_bytes} bytes")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(f"registry {self.host} served blob {digest} with other content")
        return data

    def upload_blob(self, repository: str, data: bytes) -> str:
        """Upload one blob (POST then monolithic PUT) unless the registry has it; its digest."""
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.blob_exists(repository, digest):
            return digest
        resp = self._request("POST", f"{self.base}/{repository}/blobs/uploads/")
        if resp.status_code != 202 or "Location" not in resp.headers:
            raise RegistryError(f"registry {self.host} refused to start a blob upload to {repository} "
                                f"(HTTP {resp.status_code})")
        location = resp.headers["Location"]
        if location.startswith("/"):
            location = f"{self.scheme}://{self.host}{location}"
        sep = "&" if "?" in location else "?"
        resp = self._request("PUT", f"{location}{sep}digest={digest}", data=data,
                             headers={"Content-Type": "application/octet-stream"})
        if resp.status_code != 201:
            raise RegistryError(f"registry {self.host} refused blob {digest} for {repository} (HTTP {resp.status_code})")
        return digest

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest under a tag (its blobs must be there already); its digest."""
        import hashlib

        resp = self._request("PUT", f"{self.base}/{repository}/manifests/{reference}", data=body,
                             headers={"Content-Type": media_type})
        if resp.status_code != 201:
            raise RegistryError(f"registry {self.host} refused the manifest {repository}:{reference} "
                                f"(HTTP {resp.status_code}): {resp.text[:200]}")
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def tags(self, repository: str) -> list[str]:
        """Every tag of a repository (following the API's pagination); [] for an unknown one."""
        url: str | None = f"{self.base}/{repository}/tags/list?n=1000"
        found: list[str] = []
        while url:
            resp = self._request("GET", url)
            if resp.status_code == 404:
                return found
            self._expect_found(resp, f"{repository} (tag list)")
            found += resp.json().get("tags") or []
            link = resp.headers.get("Link", "")
            match = re.match(r'<([^>]+)>;\s*rel="next"', link)
            url = (f"{self.scheme}://{self.host}{match.group(1)}" if match and match.group(1).startswith("/")
                   else (match.group(1) if match else None))
        return found
