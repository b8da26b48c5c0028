"""A hostile HTTP server on 127.0.0.1 for the deadline tests: it answers every request
with a status line and headers, then sends its body one byte every ``interval`` seconds
(so no single read ever times out), for as long as the client stays.

Why a real socket: the bug is a client whose per-read timeout never fires because bytes
keep trickling in; only a server that really trickles shows it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


@contextlib.contextmanager
def dripping(interval: float = 0.5, *, status: str = "200 OK", headers: dict[str, str] | None = None,
             body_length: int = 10_000_000, silent: bool = False) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a server whose answers never finish in any useful time
    (``silent``: that accepts the connection and never sends a byte)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(32)
    srv.settimeout(0.2)
    stop = threading.Event()
    head = (f"HTTP/1.1 {status}\r\nContent-Length: {body_length}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()) + "\r\n").encode()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)  # the request; its content does not matter
                if silent:
                    stop.wait()
                    return
                conn.sendall(head)
                while not stop.is_set():
                    conn.sendall(b"P")
                    time.sleep(interval)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _addr = srv.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        srv.close()
