"""A real registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 for tests.

Each instance has its own port, storage folder and optional htpasswd file, and is
stopped (and its storage removed with tmp_path) when the test ends: tests never touch a
registry they did not start.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

from tests.support.netns import inside


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningRegistry:
    def __init__(self, host: str, proc: subprocess.Popen, root: Path, auth: tuple[str, str] | None,
                 config: Path | None = None, log=None):
        self.host, self.proc, self.root, self.auth = host, proc, root, auth
        self.config, self.log = config, log

    def stop(self) -> None:
        """Stop the registry process (its storage stays): "the registry went down"."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def start(self, netns: str | None = None) -> None:
        """Start it again on the same port and storage; with ``netns`` (a network namespace
        file, tests/support/netns.py) inside that namespace: what it stored before is then
        served on 127.0.0.1 of that namespace, to a daemon that runs there."""
        binary = registry_binary()
        assert binary and self.config is not None
        argv = [binary, "serve", str(self.config)]
        self.proc = subprocess.Popen(inside(netns, argv) if netns else argv, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        _wait_ready(self.host, self.proc, self.config.parent, netns=netns)

    @property
    def url(self) -> str:
        return f"http://{self.host}/v2"

    def push_manifest(self, repository: str, tag: str, payload: bytes = b"dlbase test layer") -> str:
        """Upload a tiny config+layer and a manifest through the API; return its digest."""
        def blob(data: bytes) -> str:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            r = requests.post(f"{self.url}/{repository}/blobs/uploads/", auth=self.auth, timeout=10)
            r.raise_for_status()
            loc = r.headers["Location"]
            sep = "&" if "?" in loc else "?"
            if loc.startswith("/"):
                loc = f"http://{self.host}{loc}"
            r = requests.put(f"{loc}{sep}digest={digest}", data=data, auth=self.auth, timeout=10,
                             headers={"Content-Type": "application/octet-stream"})
            r.raise_for_status()
            return digest

        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        cfg_digest = blob(config)
        layer_digest = blob(payload)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(config), "digest": cfg_digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(payload), "digest": layer_digest}],
        }, indent=3).encode()
        r = requests.put(f"{self.url}/{repository}/manifests/{tag}", data=manifest, auth=self.auth, timeout=10,
                         headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
        r.raise_for_status()
        return "sha256:" + hashlib.sha256(manifest).hexdigest()


def registry_binary() -> str | None:
    return shutil.which("docker-registry")


@contextmanager
def running_registry(tmp: Path, *, auth: tuple[str, str] | None = None) -> Iterator[RunningRegistry]:
    """Start docker-registry on a free 127.0.0.1 port with storage under `tmp`."""
    binary = registry_binary()
    if binary is None:
        raise RuntimeError("docker-registry is not installed (run tools/host/setup.sh)")
    port = free_port()
    storage = tmp / "registry-storage"
    storage.mkdir(parents=True, exist_ok=True)
    cfg = ["version: 0.1", "log:", "  level: error", "storage:", "  filesystem:",
           f"    rootdirectory: {storage}", "  delete:", "    enabled: true",
           "http:", f"  addr: 127.0.0.1:{port}"]
    if auth:
        htpasswd = tmp / "htpasswd"
        subprocess.run(["htpasswd", "-Bbc", str(htpasswd), auth[0], auth[1]], check=True,
                       capture_output=True)
        cfg += ["auth:", "  htpasswd:", "    realm: dlbase-test", f"    path: {htpasswd}"]
    config = tmp / "registry.yml"
    config.write_text("\n".join(cfg) + "\n")
    log = open(tmp / "registry.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    reg = RunningRegistry(host, proc, storage, auth, config=config, log=log)
    try:
        _wait_ready(host, proc, tmp)
        yield reg
    finally:
        reg.proc.terminate()
        try:
            reg.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            reg.proc.kill()
        log.close()


def _answers(host: str, netns: str | None) -> bool:
    if netns:  # this process is in the host's namespace: ask from inside that one
        probe = subprocess.run(inside(netns, ["curl", "-s", "-o", "/dev/null", f"http://{host}/v2/"]),
                               capture_output=True, timeout=10)
        return probe.returncode == 0
    try:
        requests.get(f"http://{host}/v2/", timeout=1)
        return True
    except requests.ConnectionError:
        return False


def _wait_ready(host: str, proc: subprocess.Popen, tmp: Path, netns: str | None = None) -> None:
    deadline = time.monotonic() + 20
    while not _answers(host, netns):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"docker-registry did not start: {(tmp / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.1)


def dangling_references(host: str, repository: str) -> list[str]:
    """Manifests of ``repository`` that name a blob the registry does not have (a
    half-written push or attachment would show up here)."""
    tags = requests.get(f"http://{host}/v2/{repository}/tags/list", timeout=10).json().get("tags") or []
    accept = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])
    problems = []
    for tag in tags:
        manifest = requests.get(f"http://{host}/v2/{repository}/manifests/{tag}", headers={"Accept": accept},
                                timeout=10).json()
        for desc in [manifest.get("config") or {}] + list(manifest.get("layers") or []):
            digest = desc.get("digest")
            if digest and requests.head(f"http://{host}/v2/{repository}/blobs/{digest}", timeout=10).status_code != 200:
                problems.append(f"{tag} names missing blob {digest}")
    return problems
