"""Reading a wheel's METADATA from a hostile or careless mirror: one that ignores Range
must not send a whole wheel into memory; a macOS wheel is not a Linux one. Real HTTP
servers on 127.0.0.1 that count what they sent."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator

import pytest

from dlbase.core.errors import Unreachable
from dlbase.define import wheelmeta

LINUX = "bigpkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
MAC = "bigpkg-1.0-cp39-cp39-macosx_11_0_x86_64.whl"
WHEEL_BYTES = 200 << 20  # what a mirror that ignores Range sends: a torch-sized wheel


def _small_wheel() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bigpkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: bigpkg\nVersion: 1.0\n")
    return buf.getvalue()


@contextlib.contextmanager
def mirror(*, announces_ranges: bool) -> Iterator[tuple[str, dict[str, int]]]:
    """(index URL, counters) of a mirror with no .metadata files whose GET of a wheel
    ignores Range and sends the whole (large) file."""
    sent = {"wheel_bytes": 0}
    size = WHEEL_BYTES

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _head(self, code: int, length: int, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()

        def do_HEAD(self) -> None:  # noqa: N802
            if self.path.endswith(".whl"):
                return self._head(200, size, "application/zip",
                                  {"Accept-Ranges": "bytes"} if announces_ranges else None)
            self._head(404, 0, "text/plain")

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/simple/bigpkg/":
                body = json.dumps({"meta": {"api-version": "1.1"}, "name": "bigpkg",
                                   "files": [{"filename": f, "url": f"/files/{f}", "hashes": {}}
                                             for f in (LINUX, MAC)]}).encode()
                self._head(200, len(body), "application/vnd.pypi.simple.v1+json")
                self.wfile.write(body)
                return
            if self.path.endswith(".whl"):
                self._head(200, size, "application/zip")  # Range ignored: the whole file
                block = b"\0" * (1 << 20)
                try:
                    for _ in range(size // len(block)):
                        self.wfile.write(block)
                        sent["wheel_bytes"] += len(block)
                except OSError:
                    return
                return
            self._head(404, 0, "text/plain")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple", sent
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("announces_ranges", [True, False])
def test_a_mirror_that_ignores_range_does_not_send_the_whole_wheel(announces_ranges: bool) -> None:
    with mirror(announces_ranges=announces_ranges) as (url, sent):
        with pytest.raises(Unreachable, match="range requests"):
            wheelmeta.read(url, "bigpkg", "1.0", python="3.11", platform="x86_64-manylinux_2_28")
    assert sent["wheel_bytes"] < 32 << 20, f"the mirror sent {sent['wheel_bytes'] >> 20} MiB"


def test_a_macos_wheel_is_not_counted_as_linux() -> None:
    with mirror(announces_ranges=True) as (url, _sent):
        pythons = wheelmeta.wheel_pythons(url, "bigpkg", "1.0", platform="x86_64-manylinux_2_28")
    assert pythons == ["3.11"]
