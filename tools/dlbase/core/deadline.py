"""One overall deadline for a network operation, and a tick while it waits.

Why: ``requests``' ``timeout`` bounds each socket read, not a call, so a server that sends
one byte every 5 s holds a download, an index listing or a range read forever. A blocked
read cannot be interrupted from Python, so a watchdog shuts the socket down when the
operation's deadline passes; the read then fails at once and the caller says which URL
did not finish in time. Every HTTP client of dlbase (registry, OSV archives, package
indexes, wheel metadata) mounts :class:`WatchedAdapter` and runs its calls inside
:func:`within`, so the rule lives here once.

While an operation waits, listeners registered with :func:`on_tick` are called every
:data:`TICK_S` seconds with what is being waited for: the CLI prints a ticking line,
library callers hear nothing. The deadline of every operation can be shortened (or
lengthened) with :data:`ENV_VAR`, which the tests use to keep a slow server's test short.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import requests
import urllib3.connection
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

#: Overrides every network operation's deadline, in seconds (the tests set it short).
ENV_VAR = "DLBASE_NET_DEADLINE"
#: Seconds between two ticks of a waiting operation.
TICK_ENV_VAR = "DLBASE_NET_TICK"
TICK_S = 5.0

#: A listener: (what is waited for, seconds waited so far, the deadline in seconds).
Listener = Callable[[str, float, float], None]

_current = threading.local()
_listeners: list[Listener] = []


def seconds(default: float) -> float:
    """The deadline to use: ``$DLBASE_NET_DEADLINE`` when it is a positive number, else ``default``."""
    return seconds_from(ENV_VAR, default)


def on_tick(listener: Listener) -> Callable[[], None]:
    """Have ``listener`` called while any operation waits; returns the call that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


class Deadline:
    """The deadline of one operation: shuts the armed socket down when it passes, and
    ticks the listeners while the operation runs."""

    def __init__(self, what: str, limit: float, *, on_expire: Callable[[], None] | None = None,
                 tick: float | None = None):
        self.what, self.limit, self._on_expire = what, limit, on_expire
        self._tick = tick if tick is not None else seconds_from(TICK_ENV_VAR, TICK_S)
        self.started = time.monotonic()
        self.at = self.started + limit
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="dlbase-deadline", daemon=True)
        self._watchdog.start()

    def left(self) -> float:
        return self.at - time.monotonic()

    def arm(self, sock: socket.socket) -> None:
        """Watch ``sock`` (the connection now reading an answer); shut it at once if late."""
        with self._lock:
            self._sock = sock
            if self.fired:
                self._shut()

    def _shut(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def _watch(self) -> None:
        tick = self._tick
        next_tick = self.started + tick
        while not self._done.is_set():
            now = time.monotonic()
            if now >= self.at:
                with self._lock:
                    self.fired = True
                    self._shut()
                if self._on_expire is not None:
                    with contextlib.suppress(Exception):
                        self._on_expire()
                return
            if now >= next_tick:
                for listener in list(_listeners):
                    with contextlib.suppress(Exception):  # a listener never breaks the operation
                        listener(self.what, now - self.started, self.limit)
                next_tick += tick
            self._done.wait(min(self.at, next_tick) - now)

    def cancel(self) -> None:
        self._done.set()


def seconds_from(env_var: str, default: float) -> float:
    """A positive number of seconds from ``env_var``, else ``default``."""
    try:
        value = float(os.environ.get(env_var, ""))
    except ValueError:
        return default
    return value if 0 < value < float("inf") else default


@contextlib.contextmanager
def within(what: str, limit: float, *, on_expire: Callable[[], None] | None = None,
           tick: float | None = None) -> Iterator[Deadline]:
    """Run the HTTP calls of this thread's block (on a :func:`session`) under one deadline
    of ``limit`` seconds (or ``$DLBASE_NET_DEADLINE``); nested blocks keep the outer one.
    ``on_expire`` is called (from the watchdog) when it passes: how to stop a child
    process that does the network work, since there is no socket of ours to shut."""
    outer = getattr(_current, "deadline", None)
    if outer is not None and on_expire is None:
        yield outer
        return
    deadline = Deadline(what, seconds(limit), on_expire=on_expire, tick=tick)
    _current.deadline = deadline
    try:
        yield deadline
    finally:
        _current.deadline = outer
        deadline.cancel()


def current() -> Deadline | None:
    """The deadline of the operation running in this thread, if any."""
    return getattr(_current, "deadline", None)


def expired() -> bool:
    """Whether the running operation's deadline has passed (its socket was shut)."""
    deadline = current()
    return deadline is not None and (deadline.fired or deadline.left() <= 0)


class _Watched:
    """Arms the calling thread's deadline on the socket before the answer is read."""

    sock: socket.socket | None

    def getresponse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        watch = current()
        if watch is not None and self.sock is not None:
            watch.arm(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections that arm the deadline (direct or through a proxy)."""

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return manager


def session() -> requests.Session:
    """A ``requests`` session whose calls obey the running :func:`within` deadline."""
    s = requests.Session()
    watch(s)
    return s


def watch(s: requests.Session) -> requests.Session:
    """Mount the watched adapter on an existing session (one a caller passed in)."""
    for prefix in ("http://", "https://"):
        if not isinstance(s.get_adapter(prefix), WatchedAdapter):
            s.mount(prefix, WatchedAdapter())
    return s
