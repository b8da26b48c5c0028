"""A fake registry on 127.0.0.1 that answers what a test tells it to: the odd answers a
real registry, a proxy or an attacker can give (HTML with 200, a manifest that is ``[]``,
a redirect loop, a body sent one byte at a time).

By default it serves one signed image well (``x/y:1``, its ``.sig``), so a test changes
one answer and the rest of dlbase's path runs as against a real registry. Every request
is recorded (method, path, headers) so a test can check which secret went where. The
server runs in a daemon thread, is shut down when the ``with`` block ends, and stops by
itself after :data:`LIFETIME_S` whatever happens.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

from dlbase.core.digest import sha256_of

LIFETIME_S = 120
REPO, TAG = "x/y", "1"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"

Route = Callable[["Handler"], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class OddRegistry:
    host: str = ""
    manifests: dict[str, bytes] = field(default_factory=dict)  # tag or digest -> body
    blobs: dict[str, bytes] = field(default_factory=dict)
    routes: list[tuple[str, str, Route]] = field(default_factory=list)  # (method, path prefix, route)
    seen: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def on(self, method: str, path: str, route: Route) -> None:
        """Answer ``method`` on paths starting with ``path`` with ``route`` (latest first).
        ``method`` "*" matches every method."""
        self.routes.insert(0, (method, path, route))

    def put_manifest(self, ref: str, body: bytes) -> str:
        digest = sha256_of(body)
        self.manifests[ref] = body
        self.manifests[digest] = body
        return digest

    def put_blob(self, data: bytes) -> str:
        digest = sha256_of(data)
        self.blobs[digest] = data
        return digest


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Route:
    """A route that answers ``status`` with ``body`` (and a correct Content-Length)."""
    def route(h: Handler) -> None:
        h.reply(status, body, headers or {})
    return route


def drip(head: bytes, body: bytes, every: float) -> Route:
    """A route that sends ``head`` then ``body`` one byte every ``every`` seconds (stopping
    when the client hangs up or the server stops)."""
    def route(h: Handler) -> None:
        h.close_connection = True
        data = head + body
        try:
            for i in range(len(data)):
                if h.registry.stop.is_set():
                    return
                h.wfile.write(data[i:i + 1])
                h.wfile.flush()
                time.sleep(every)
        except OSError:
            return
    return route


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    registry: OddRegistry  # set on the subclass made per server

    def log_message(self, *_args) -> None:  # quiet
        pass

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except OSError:
                pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.registry.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
        for method, prefix, route in self.registry.routes:
            if method in ("*", self.command) and self.path.startswith(prefix):
                route(self)
                return
        self._default()

    do_GET = do_HEAD = do_PUT = do_POST = _handle

    def _default(self) -> None:
        reg, path = self.registry, self.path.split("?", 1)[0]
        if path == "/v2/":
            return self.reply(200, b"{}", {"Content-Type": "application/json"})
        prefix = f"/v2/{REPO}/"
        if path.startswith(prefix + "manifests/"):
            ref = path[len(prefix + "manifests/"):]
            body = reg.manifests.get(ref)
            if body is None:
                return self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            return self.reply(200, body, {"Docker-Content-Digest": sha256_of(body), "Content-Type": MANIFEST_TYPE})
        if path.startswith(prefix + "blobs/"):
            data = reg.blobs.get(path[len(prefix + "blobs/"):])
            return self.reply(404) if data is None else self.reply(200, data)
        if path == prefix + "tags/list":
            tags = sorted(t for t in reg.manifests if not t.startswith("sha256:"))
            return self.reply(200, json.dumps({"name": REPO, "tags": tags}).encode())
        return self.reply(404)


@contextmanager
def odd_registry() -> Iterator[OddRegistry]:
    reg = OddRegistry()
    handler = type("BoundHandler", (Handler,), {"registry": reg})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    reg.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    limit = threading.Timer(LIFETIME_S, server.shutdown)
    limit.daemon = True
    limit.start()
    try:
        yield reg
    finally:
        reg.stop.set()
        limit.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)


def signed_image(reg: OddRegistry, pair) -> str:
    """Serve ``x/y:1`` and a valid ``.sig`` for it, signed by ``pair`` and naming the tag
    (as `push --sign` signs: `trust x/y:1` needs a signature naming 1); the image digest."""
    from dlbase.trust import simplesign, store

    digest = reg.put_manifest(TAG, json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "layers": []}).encode())
    blob, notes = simplesign.sign(pair, simplesign.payload(f"{reg.host}/{REPO}", digest,
                                                           {simplesign.TAG_ANNOTATION: TAG}))
    layer = store.Layer(blob, simplesign.MEDIA_TYPE, notes)
    reg.put_blob(blob)
    reg.put_blob(store.EMPTY_CONFIG)
    reg.put_manifest(store.sig_tag(digest), store.manifest_bytes([layer.descriptor()]))
    return digest
