"""A small Docker Registry HTTP API v2 client: resolve tags to digests, read manifests,
write the signature and attestation artifacts.

It needs no Docker daemon (and imports no docker): `dlbase pin` asks the registry itself
which digest a base tag points at, publishing reads the manifest back after a push, and
`dlbase trust` reads the evidence. A registry is not trusted: every answer is read within
a size cap and a deadline (:mod:`.limits`), checked before use (:mod:`.answers`), and
secrets go only to the server they belong to (:mod:`.auth`). Credentials are handed in by
the caller (``dlbase.engine.credentials`` reads what `docker login` stored).
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlencode, urljoin

from dlbase.core import digest as digests
from dlbase.core import validate
from dlbase.core.errors import RegistryError
from dlbase.core.reference import DOCKER_HUB, DOCKER_HUB_API, Reference
from dlbase.registry import answers, auth
from dlbase.registry.auth import is_loopback
from dlbase.registry import mediatypes
from dlbase.registry.limits import BLOB_MAX, DEADLINE_S, JSON_MAX, MANIFEST_MAX, Answer, BoundedHttp, origin

__all__ = ["RegistryClient", "api_host", "is_loopback", "MANIFEST_TYPES"]

MANIFEST_TYPES = ", ".join(mediatypes.MANIFEST_TYPES)  # the Accept header of a manifest request
MAX_TAG_PAGES = 1000
#: Bytes per PATCH of a chunked blob upload: one bounded call each (the deadline is per call).
UPLOAD_CHUNK = 16 << 20
_LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def api_host(ref: Reference) -> str:
    """The host to ask for ``ref``: Docker Hub's API lives on registry-1.docker.io."""
    host = ref.normalized().host
    return DOCKER_HUB_API if host == DOCKER_HUB else host


class _Absent(RegistryError):
    """The registry has no such manifest or repository (HTTP 404)."""


class RegistryClient:
    """Talks to one registry. Loopback registries are plain HTTP, others HTTPS."""

    def __init__(self, host: str, *, credentials: tuple[str, str] | None = None, timeout: float = 15.0,
                 deadline: float = DEADLINE_S):
        self.host = validate.registry_host(host)  # a URL or bad port: a clear exit 2, not requests' InvalidURL
        self.scheme = "http" if is_loopback(host) else "https"
        self.credentials = credentials
        self.timeout = timeout
        self.http = BoundedHttp(self.host, timeout=timeout, deadline=deadline)
        self._token: str | None = None
        self._withheld: str | None = None  # why credentials were not sent to the token service

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}/v2"

    @property
    def origin(self) -> tuple[str, str, int]:
        return origin(self.base)

    def _authorization(self, url: str) -> dict[str, str]:
        """The registry's own secret for a URL on the registry's origin; nothing elsewhere."""
        if origin(url) != self.origin:
            return {}
        if self._token:
            return {"Authorization": f"Bearer {self._token}"}
        if self.credentials:
            return {"Authorization": auth.basic(self.credentials)}
        return {}

    def _request(self, method: str, url: str, *, cap: int, what: str, headers: Mapping[str, str] | None = None,
                 data: bytes | None = None) -> Answer:
        for attempt in (1, 2):
            answer = self.http.send(method, url, cap=cap, what=what, headers=headers, data=data,
                                    authorize=self._authorization)
            challenge = answer.headers.get("WWW-Authenticate", "")
            if answer.status == 401 and attempt == 1 and challenge.lower().startswith("bearer"):
                self._token = self._fetch_token(challenge)
                continue
            break
        if answer.status == 401:
            why = f" ({self._withheld})" if self._withheld else ""
            raise RegistryError(f"registry {self.host} refused the credentials (HTTP 401) for {what}{why}",
                                hint="log in with `docker login` or set DLBASE_REGISTRY_USER/DLBASE_REGISTRY_PASSWORD")
        return answer

    def _fetch_token(self, challenge: str) -> str:
        realm, params = auth.bearer_challenge(challenge, self.host)
        send_basic = bool(self.credentials) and auth.may_send_credentials_to_realm(realm, self.host)
        if self.credentials and not send_basic:
            self._withheld = f"the credentials were not sent to token service {realm}: it is not on {self.host}'s site"
        headers = {"Authorization": auth.basic(self.credentials)} if send_basic and self.credentials else {}
        sep = "&" if "?" in realm else "?"
        url = f"{realm}{sep}{urlencode(params)}" if params else realm
        what = f"a token from {realm}"
        answer = self.http.send("GET", url, cap=JSON_MAX, what=what,
                                authorize=lambda u: headers if origin(u) == origin(realm) else {})
        if answer.status != 200:
            raise RegistryError(f"token service {realm} answered HTTP {answer.status}",
                                hint="check the registry credentials")
        return answers.token(answer.body, f"token service {realm}")

    def _expect_found(self, answer: Answer, what: str) -> None:
        """404 and any other non-200 answer become a RegistryError naming what was asked."""
        if answer.status == 404:
            raise _Absent(f"{self.host}/{what} does not exist in the registry")
        if answer.status != 200:
            raise RegistryError(f"registry {self.host} answered HTTP {answer.status} for {what}")

    @staticmethod
    def _named(repository: str, reference: str) -> str:
        return f"{repository}{'@' if digests.is_digest(reference) else ':'}{reference}"

    def ping(self) -> int:
        """The HTTP status of ``GET /v2/`` (200: the registry answers the v2 API).
        Unreachable when nothing listens there, RegistryError when it refuses the login."""
        return self._request("GET", f"{self.base}/", cap=JSON_MAX, what="the v2 API root").status

    def manifest_digest(self, repository: str, reference: str) -> str:
        """The digest the registry serves for a tag (index/manifest list when multi-arch)."""
        what = self._named(repository, reference)
        answer = self._request("HEAD", f"{self.base}/{repository}/manifests/{reference}", cap=0, what=what,
                               headers={"Accept": MANIFEST_TYPES})
        self._expect_found(answer, what)
        digest = answers.content_digest(answer.headers.get("Docker-Content-Digest"), what)
        if not digest:  # some registries omit the header on HEAD; GET and hash the body
            return self.manifest(repository, reference)[1]
        return digest

    def manifest(self, repository: str, reference: str) -> tuple[dict[str, Any], str]:
        """(manifest JSON object, digest computed from its bytes): the digest is checked, not trusted."""
        manifest, _body, digest = self.manifest_with_bytes(repository, reference)
        return manifest, digest

    def manifest_with_bytes(self, repository: str, reference: str) -> tuple[dict[str, Any], bytes, str]:
        """(manifest JSON object, its bytes as served, their digest): the bytes a manifest
        is copied with, so a copy under another tag keeps the digest."""
        what = self._named(repository, reference)
        answer = self._request("GET", f"{self.base}/{repository}/manifests/{reference}", cap=MANIFEST_MAX,
                               what=f"manifest {what}", headers={"Accept": MANIFEST_TYPES})
        self._expect_found(answer, what)
        digest = digests.sha256_of(answer.body)
        if digests.is_sha256(reference) and digest != reference:
            raise RegistryError(f"registry {self.host} served {what} with other content ({digest})")
        return answers.json_object(answer.body, f"manifest {self.host}/{what}", "manifest"), answer.body, digest

    def tag_digest_or_none(self, repository: str, tag: str) -> str | None:
        try:
            return self.manifest_digest(repository, tag)
        except _Absent:
            return None

    def referrers(self, repository: str, digest: str) -> list[dict] | None:
        """The descriptors of the OCI 1.1 referrers API (``GET /v2/REPO/referrers/DIGEST``,
        every page); None when the registry has no such API (HTTP 404, as distribution 2.8).

        The answer must be an image index (checked descriptors); anything else, a page loop
        or a redirect loop is a RegistryError. No ``artifactType`` filter is asked for: the
        bundle versions carry different artifact types, a registry may ignore the filter,
        and the caller checks each entry's type anyway (skipping others costs nothing)."""
        what = f"the referrers of {repository}@{digest}"
        found: list[dict] = []
        for answer in self._pages(f"{self.base}/{repository}/referrers/{digest}", what, cap=MANIFEST_MAX,
                                  headers={"Accept": mediatypes.OCI_INDEX}):
            if answer.status == 404 and not found:
                return None
            self._expect_found(answer, what)
            index = answers.json_object(answer.body, f"{self.host}: {what}", "manifest")
            found += answers.manifests(index, f"{self.host}: {what}")
        return found

    def _pages(self, url: str, what: str, *, cap: int, headers: Mapping[str, str] | None = None) -> Iterator[Answer]:
        """Each page of a paginated API answer, following ``Link: <...>; rel="next"``.

        A ``Link`` must stay on this registry and never point back at a page already read."""
        seen: set[str] = set()
        next_url: str | None = url
        while next_url:
            if next_url in seen or len(seen) >= MAX_TAG_PAGES:
                raise RegistryError(f"registry {self.host}: {what} pages in a loop (back to {next_url})")
            seen.add(next_url)
            answer = self._request("GET", next_url, cap=cap, what=what, headers=headers)
            yield answer
            match = _LINK_RE.search(answer.headers.get("Link", ""))
            next_url = urljoin(next_url, match.group(1)) if match else None
            if next_url and origin(next_url) != self.origin:
                raise RegistryError(f"registry {self.host}: {what} links to another server ({next_url}); "
                                    "it is not followed (the registry's token would go with it)")

    # ---- writing (signatures and attestations; trust/store.py) ----------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        answer = self._request("HEAD", f"{self.base}/{repository}/blobs/{digest}", cap=0,
                               what=f"blob {digest}")
        return answer.status == 200

    def blob(self, repository: str, digest: str, *, max_bytes: int = BLOB_MAX) -> bytes:
        """A blob's bytes, checked against its digest (a registry is not trusted either)."""
        what = f"{repository}@{digest} (blob)"
        answer = self._request("GET", f"{self.base}/{repository}/blobs/{digest}", cap=max_bytes, what=what)
        self._expect_found(answer, what)
        if digests.sha256_of(answer.body) != digest:
            raise RegistryError(f"registry {self.host} served blob {digest} with other content")
        return answer.body

    def _start_upload(self, repository: str, what: str) -> str:
        """Open an upload session (POST); the absolute URL the blob's bytes go to."""
        answer = self._request("POST", f"{self.base}/{repository}/blobs/uploads/", cap=JSON_MAX, what=what)
        if answer.status != 202 or "Location" not in answer.headers:
            raise RegistryError(f"registry {self.host} refused to start {what} (HTTP {answer.status})")
        return urljoin(self.base + "/", answer.headers["Location"])

    def upload_blob(self, repository: str, data: bytes) -> str:
        """Upload one blob (POST then monolithic PUT) unless the registry has it; its digest."""
        digest = digests.sha256_of(data)
        if self.blob_exists(repository, digest):
            return digest
        location = self._start_upload(repository, f"a blob upload to {repository}")
        sep = "&" if "?" in location else "?"
        answer = self._request("PUT", f"{location}{sep}digest={digest}", cap=JSON_MAX, what=f"blob {digest}",
                               data=data, headers={"Content-Type": "application/octet-stream"})
        if answer.status != 201:
            raise RegistryError(f"registry {self.host} refused blob {digest} for {repository} (HTTP {answer.status})")
        return digest

    def upload_blob_file(self, repository: str, path: str | os.PathLike[str], digest: str, size: int, *,
                         on_progress: Callable[[int], None] = lambda _n: None) -> bool:
        """Upload a blob of any size from a file, in chunks, unless the registry has it;
        True when it was uploaded, False when it was already there.

        A layer is gigabytes: one PUT would hold it in memory and outlast any deadline, so
        it goes as an upload session (POST, one PATCH per :data:`UPLOAD_CHUNK`, each a
        bounded call of its own, then the PUT that names the digest: the registry checks
        it and only then makes the blob exist). A failure leaves an unfinished upload
        session, which the registry discards: never a blob with other bytes, never a tag."""
        if self.blob_exists(repository, digest):
            return False
        what = f"blob {digest} for {repository}"
        location = self._start_upload(repository, f"the upload of {what}")
        sent = 0
        with open(path, "rb") as fh:
            while True:
                chunk = fh.read(UPLOAD_CHUNK)
                if not chunk:
                    break
                answer = self._request("PATCH", location, cap=JSON_MAX, what=what, data=chunk,
                                       headers={"Content-Type": "application/octet-stream",
                                                "Content-Range": f"{sent}-{sent + len(chunk) - 1}"})
                if answer.status != 202 or "Location" not in answer.headers:
                    raise RegistryError(f"registry {self.host} refused bytes {sent}-{sent + len(chunk) - 1} of "
                                        f"{what} (HTTP {answer.status})")
                location = urljoin(location, answer.headers["Location"])
                sent += len(chunk)
                on_progress(sent)
        if sent != size:
            raise RegistryError(f"{what}: {sent} bytes read from {path}, {size} expected (the file changed)")
        sep = "&" if "?" in location else "?"
        answer = self._request("PUT", f"{location}{sep}digest={digest}", cap=JSON_MAX, what=what, data=b"",
                               headers={"Content-Type": "application/octet-stream"})
        if answer.status != 201:
            raise RegistryError(f"registry {self.host} refused {what} (HTTP {answer.status}): "
                                f"{answer.body[:200].decode('utf-8', 'replace')}")
        return True

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest under a tag (its blobs must be there already); its digest."""
        what = f"manifest {repository}:{reference}"
        answer = self._request("PUT", f"{self.base}/{repository}/manifests/{reference}", cap=JSON_MAX, what=what,
                               data=body, headers={"Content-Type": media_type})
        if answer.status != 201:
            raise RegistryError(f"registry {self.host} refused the {what} (HTTP {answer.status}): "
                                f"{answer.body[:200].decode('utf-8', 'replace')}")
        return digests.sha256_of(body)

    def tags(self, repository: str) -> list[str]:
        """Every tag of a repository (following the API's pagination, :meth:`_pages`); [] for an unknown one."""
        what = f"the tag list of {repository}"
        found: list[str] = []
        for answer in self._pages(f"{self.base}/{repository}/tags/list?n=1000", what, cap=JSON_MAX):
            if answer.status == 404:
                return found
            self._expect_found(answer, f"{repository} (tag list)")
            found += answers.tags_page(answer.body, f"{self.host}: {what}")
        return found
