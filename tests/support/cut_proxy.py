"""A tiny TCP proxy on 127.0.0.1 that forwards to a registry and can be "cut".

Used to take the registry away in the middle of a multi-request operation without a
hook in the code under test: once a request line matching ``cut_on`` passes (e.g. the
first manifest PUT of a signature tag), every connection is closed and new ones are
refused, exactly as if the registry host went down. The registry itself keeps running,
so the test can then inspect what it holds.
"""

from __future__ import annotations

import re
import socket
import threading


class CutProxy:
    def __init__(self, upstream: tuple[str, int], cut_on: str):
        self.upstream = upstream
        self.cut_on = re.compile(cut_on.encode())
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(32)
        self.port = self.server.getsockname()[1]
        self.cut = threading.Event()
        self.seen: list[str] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.cut.is_set():
                client.close()
                return
            upstream = socket.create_connection(self.upstream)
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, inspect: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if inspect:
                    line = data.split(b"\r\n", 1)[0]
                    if re.match(rb"^[A-Z]+ /", line):
                        self.seen.append(line.decode(errors="replace"))
                        if self.cut_on.search(line):
                            self.close()  # the request never reaches the registry
                            return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.cut.set()
        try:
            self.server.close()
        except OSError:
            pass
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass
