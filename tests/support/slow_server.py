"""Hostile servers on this machine for the deadline tests: one that answers every request
with a status line and headers, then sends its body one byte every ``interval`` seconds
(so no single read ever times out) for as long as the client stays; one that accepts and
never sends a byte (TCP or a unix socket: a "Docker daemon").

Why real sockets: the bug is a client whose per-read timeout never fires because bytes
keep trickling in, or that waits on a peer that never answers; only a real peer shows it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def _serving(srv: socket.socket, handle: Callable[[socket.socket, threading.Event], None]) -> Iterator[None]:
    """Accept on ``srv`` until the block ends, each connection handled in a thread of its own."""
    srv.listen(32)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            handle(conn, stop)

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
        yield
    finally:
        stop.set()
        thread.join(2)
        srv.close()


@contextlib.contextmanager
def dripping(interval: float = 0.5, *, status: str = "200 OK", headers: dict[str, str] | None = None,
             body_length: int = 10_000_000, silent: bool = False, first: bytes | None = None) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a server whose answers never finish in any useful time
    (``silent``: that accepts the connection and never sends a byte; ``first``: the whole
    answer to the first request, which then comes at once)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    head = (f"HTTP/1.1 {status}\r\nContent-Length: {body_length}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()) + "\r\n").encode()
    answered: list[bool] = []

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(5)
        conn.recv(65536)  # the request; its content does not matter
        if first is not None and not answered:
            answered.append(True)
            conn.sendall(first)
            return
        if silent:
            stop.wait()
            return
        conn.sendall(head)
        while not stop.is_set():
            conn.sendall(b"P")
            time.sleep(interval)

    with _serving(srv, handle):
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"


@contextlib.contextmanager
def silent_unix(path: str) -> Iterator[str]:
    """``unix://PATH`` of a socket that accepts every connection and never answers."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    with _serving(srv, lambda _conn, stop: stop.wait()):
        yield f"unix://{path}"
