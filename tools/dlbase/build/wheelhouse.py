"""Fill a wheelhouse on the host from a lock, and serve it to ``docker build``.

Why: containers here cannot reach PyPI (TLS fails inside them), so the wheels a lock
pins are downloaded on the host, checked against the lock's sha256 hashes as they
arrive, and then offered to the build on ``http://127.0.0.1:PORT/`` (the build runs with
``network_mode="host"``) for ``pip install --no-index --find-links URL --require-hashes``.

Files are fetched straight from the index's simple API (read by
:mod:`dlbase.define.simpleindex`) with ``requests`` rather than through ``pip download``: that gives per-file
byte progress, parallel downloads, a hash check while streaming, and no dependence on the
host's pip configuration (``PIP_FIND_LINKS`` and friends). Only the one wheel per
package that fits the target interpreter and platform is fetched.

Convention: the default wheelhouse of a python/platform pair is
``<cache>/wheelhouse/<python>-<platform>/`` in the machine's dlbase cache
(:func:`dlbase.core.cachedir.cache_dir`: ``~/.cache/dlbase`` unless ``DLBASE_CACHE_DIR``
or ``XDG_CACHE_HOME`` says otherwise), shared by every clone and CI run on the machine.
A project that has its own ``<repo>/.dlbase/wheelhouse/`` folder uses that one instead
(a copy that must not touch the shared cache, e.g. a test project with a wheel made for
it). Variants sharing a python and platform share a wheelhouse; files not in a given lock
are left alone, since pip installs only what the lock names. Sharing is safe because
every fill hashes every wheel it reuses against the lock's pins (see :func:`fill`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import re
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import requests
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from dlbase.core import httpget
from dlbase.core.cachedir import cache_dir
from dlbase.core import networds
from dlbase.core.errors import HashMismatch, InvalidInput, Unreachable
from dlbase.core.fileerrors import file_error
from dlbase.define import simpleindex
from dlbase.define.lock import PYPI_SIMPLE, Lock, Pinned, read_lock
from dlbase.define.wheeltags import platform_tags_for, target_tags
from dlbase.core.root import search_root

__all__ = [
    "FillEvent",
    "WheelFile",
    "default_wheelhouse",
    "fill",
    "plan",
    "platform_tags_for",
    "serve",
    "target_tags",
]

_CHUNK = 1 << 20
#: Seconds one wheel's download may take in all: torch's 900 MB at about 1 MB/s.
WHEEL_DEADLINE_S = 1800.0
_PART_RE = re.compile(r"^\.(?P<name>.+\.whl)\.(?P<pid>\d+)\.part$")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class WheelFile:
    """The one wheel of a pinned package chosen for the target, as the index lists it."""

    name: str  # project name as in the lock
    version: str
    filename: str
    url: str
    sha256: str | None  # from the index, when it gives one (checked again on download)
    size: int | None  # bytes, when the index gives it (PEP 700)


@dataclass(frozen=True)
class FillEvent:
    """Progress of :func:`fill`, one per state change and about one per MiB downloaded.

    ``state``: ``"reused"`` (already in the wheelhouse with a pinned hash), ``"start"``,
    ``"progress"``, ``"done"`` (downloaded and verified). ``index``/``count`` number the
    packages of the lock so a UI can show "12/41".
    """

    state: str
    filename: str
    index: int
    count: int
    bytes_done: int = 0
    bytes_total: int | None = None


# --------------------------------------------------------------------------- tags


def _wheel_rank(filename: str, pin: Pinned, priority: dict[Tag, int]) -> int | None:
    """Preference rank of ``filename`` for ``pin`` on the target (lower is better), or
    ``None`` when it is not a wheel of that exact release for that target."""
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    if name != canonicalize_name(pin.name):
        return None
    try:
        if version != Version(pin.version):
            return None
    except InvalidVersion:
        return None
    ranks = [priority[t] for t in tags if t in priority]
    return min(ranks) if ranks else None


# --------------------------------------------------------------------------- defaults


def _repo_root() -> Path:
    """The project root as :func:`dlbase.define.project.find_root` finds it, else the working
    directory (a wheelhouse can be filled outside any project)."""
    return search_root() or Path.cwd().resolve()


#: A project's own wheelhouse folder, used instead of the shared cache when it exists.
PROJECT_WHEELHOUSE = Path(".dlbase") / "wheelhouse"


def default_wheelhouse(python_version: str, platform: str, *, root: Path | None = None) -> Path:
    """``<cache>/wheelhouse/<python>-<platform>/``, or under ``<repo>/.dlbase/wheelhouse/``
    when the project has that folder (it is git-ignored; a link to a folder counts).

    Keyed by python and platform, not by variant: a wheel is the same file whichever
    variant pins it, so runtime and notebook locks share one download. In the machine's
    cache rather than the clone, so a fresh clone or CI run downloads nothing again.
    """
    base = Path(root) if root is not None else _repo_root()
    own = base / PROJECT_WHEELHOUSE
    parent = own if own.is_dir() else cache_dir() / "wheelhouse"
    return parent / f"{python_version}-{platform}"


# --------------------------------------------------------------------------- index


def _choose(pin: Pinned, index_urls: list[str], priority: dict[Tag, int],
            session: requests.Session, timeout: float) -> WheelFile:
    """The best wheel of ``pin`` for the target across ``index_urls``, restricted to
    files whose hash the lock pins (when the index states the hash)."""
    pinned = {h.split(":", 1)[1] for h in pin.hashes if h.startswith("sha256:")}
    fitting: list[tuple[int, WheelFile]] = []
    foreign: list[str] = []
    found_project = False
    for index_url in index_urls:
        files = simpleindex.files(session, index_url, pin.name, timeout)
        if files is None:
            continue
        found_project = True
        for filename, url, sha, size in files:
            rank = _wheel_rank(filename, pin, priority)
            if rank is None:
                continue
            if sha is not None and sha.lower() not in pinned:
                foreign.append(f"{filename} sha256:{sha}")
                continue
            fitting.append((rank, WheelFile(pin.name, pin.version, filename, url, sha, size)))
    if fitting:
        fitting.sort(key=lambda rw: rw[0])
        return fitting[0][1]
    if foreign:
        raise HashMismatch(
            f"{pin.name}=={pin.version}: the index serves wheels whose sha256 the lock does not pin",
            hint="the lock or the index changed; re-lock with dlbase lock <variant> and review the diff",
            details=foreign[:5],
        )
    where = ", ".join(index_urls)
    if not found_project:
        raise InvalidInput(f"{pin.name} is not on {where}",
                           hint="re-lock against the index the wheelhouse is filled from")
    raise InvalidInput(
        f"no wheel of {pin.name}=={pin.version} fits the target (on {where})",
        hint="the lock was made for another python/platform; pass the same python_version and "
             "platform as the lock header",
    )


def plan(lock: Lock | Path, *, python_version: str, platform_tags: list[str],
         index_urls: list[str] | None = None, timeout: float = 30.0,
         jobs: int = 8) -> list[WheelFile]:
    """The wheel each pinned package would be downloaded as, with sizes where the index
    gives them; nothing is downloaded. Useful to report the download size up front."""
    lock = lock if isinstance(lock, Lock) else read_lock(lock)
    urls = index_urls or _lock_indexes(lock)
    priority = {t: i for i, t in enumerate(target_tags(python_version, platform_tags))}
    local = threading.local()

    def one(pin: Pinned) -> WheelFile:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return _choose(pin, urls, priority, local.s, timeout)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, lock.packages))


def _lock_indexes(lock: Lock) -> list[str]:
    return [lock.index_url, *lock.extra_index_urls] if lock.index_url else [PYPI_SIMPLE]


# --------------------------------------------------------------------------- fill


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_parts(dest: Path) -> None:
    """Remove ``.NAME.whl.PID.part`` files left by a fill that was killed (not ours, not
    of a live process: two fills of the same wheelhouse may run side by side)."""
    for p in dest.iterdir():
        m = _PART_RE.match(p.name)
        if m and int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"])):
            p.unlink(missing_ok=True)


class _Cancelled(Exception):
    pass


def fill(
    lock_path: Path,
    dest: Path,
    *,
    python_version: str,
    platform_tags: list[str],
    on_event: Callable[[FillEvent], None] | None = None,
    index_urls: list[str] | None = None,
    jobs: int = 4,
    timeout: float = 30.0,
    retries: int = 3,
) -> list[Path]:
    """Make ``dest`` hold, for every package the lock pins, the wheel that fits the target.

    - A fitting wheel already in ``dest`` whose sha256 is pinned is reused without any
      network access, so a second run is fast and works offline.
    - A fitting wheel in ``dest`` whose sha256 the lock does not pin raises
      :class:`HashMismatch` (tampered or corrupt: it is not silently replaced; in a
      shared cache that file is evidence, and deleting it is the user's call).
    - Downloads stream to ``.NAME.PID.part`` in ``dest``, are hashed while streaming and
      renamed only when the hash is one the lock pins; otherwise the part file is
      deleted and :class:`HashMismatch` raised. ``dest`` never holds a partial wheel.
    - ``index_urls`` defaults to the indexes named in the lock header (else PyPI).

    ``on_event`` is called with :class:`FillEvent` values, serialised (never two at
    once) but possibly from worker threads. Returns the wheel paths in lock order.
    """
    lock = read_lock(Path(lock_path))
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a read-only HOME: say which folder, not a traceback
        raise file_error(dest, exc, action="create the wheelhouse") from None
    _clean_stale_parts(dest)
    urls = index_urls or _lock_indexes(lock)
    priority = {t: i for i, t in enumerate(target_tags(python_version, platform_tags))}
    count = len(lock.packages)
    emit_lock = threading.Lock()

    def emit(ev: FillEvent) -> None:
        if on_event is not None:
            with emit_lock:
                on_event(ev)

    # 1. What is already there (no network).
    existing = [p for p in dest.iterdir() if p.suffix == ".whl" and p.is_file()]
    result: dict[int, Path] = {}
    todo: list[tuple[int, Pinned]] = []
    for i, pin in enumerate(lock.packages, 1):
        pinned = {h.split(":", 1)[1] for h in pin.hashes if h.startswith("sha256:")}
        ranked = sorted(((r, p) for p in existing
                         if (r := _wheel_rank(p.name, pin, priority)) is not None),
                        key=lambda rp: rp[0])
        chosen: Path | None = None
        for _rank, path in ranked:
            digest = _sha256_file(path)
            if digest not in pinned:
                raise HashMismatch(
                    f"{path} does not match the lock: its sha256 is not one pinned for "
                    f"{pin.name}=={pin.version}",
                    hint=f"delete {path} and fill again; investigate how it changed",
                    details=[f"sha256 of file: {digest}",
                             *[f"pinned: sha256:{h}" for h in sorted(pinned)]],
                )
            chosen = chosen or path
        if chosen is not None:
            result[i] = chosen
            emit(FillEvent("reused", chosen.name, i, count, chosen.stat().st_size,
                           chosen.stat().st_size))
        else:
            todo.append((i, pin))

    if not todo:
        return [result[i] for i in range(1, count + 1)]

    # 2. Download the rest, in parallel, each checked while streaming.
    cancel = threading.Event()
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    def download(i: int, pin: Pinned) -> Path:
        if cancel.is_set():
            raise _Cancelled()
        wf = _choose(pin, urls, priority, session(), timeout)
        pinned = {h.split(":", 1)[1] for h in pin.hashes if h.startswith("sha256:")}
        final = dest / wf.filename
        part = dest / f".{wf.filename}.{os.getpid()}.part"
        last_exc: Exception | None = None
        for attempt in range(1, retries + 1):
            try:
                digest = _stream(wf, part, i, count, emit, cancel, session(), timeout)
            except httpget.Broken as exc:
                part.unlink(missing_ok=True)
                last_exc = exc
                time.sleep(min(2 ** attempt, 8) if attempt < retries else 0)
                continue
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            if digest not in pinned:
                part.unlink(missing_ok=True)
                raise HashMismatch(
                    f"downloaded {wf.filename} does not match the lock for "
                    f"{pin.name}=={pin.version}",
                    hint="the index served a different file than when the lock was made; "
                         "re-lock and review the diff",
                    details=[f"url: {wf.url}", f"sha256 of download: {digest}",
                             *[f"pinned: sha256:{h}" for h in sorted(pinned)]],
                )
            os.replace(part, final)
            emit(FillEvent("done", wf.filename, i, count, final.stat().st_size,
                           final.stat().st_size))
            return final
        raise Unreachable(
            f"downloading {wf.filename} failed after {retries} attempts",
            hint="check the network and fill again (finished files are kept)",
            details=[f"url: {wf.url}", networds.why(last_exc) if last_exc else "no attempt finished",
                     *getattr(last_exc, "details", [])],
        )

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="dlbase-fill")
    futures = {pool.submit(download, i, pin): i for i, pin in todo}
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for fut in done:
            exc = fut.exception()
            if exc is not None and not isinstance(exc, _Cancelled):
                raise exc
        for fut, i in futures.items():
            result[i] = fut.result()
    except BaseException:
        cancel.set()  # workers notice within one chunk and delete their part files
        for fut in futures:
            fut.cancel()
        raise
    finally:
        pool.shutdown(wait=True)
    return [result[i] for i in range(1, count + 1)]


def _stream(wf: WheelFile, part: Path, i: int, count: int, emit: Callable[[FillEvent], None],
            cancel: threading.Event, session: requests.Session, timeout: float) -> str:
    """Download ``wf`` into ``part`` under one deadline, returning its sha256 (computed
    while streaming)."""
    h = hashlib.sha256()
    what = f"the wheel {wf.filename}"
    with httpget.stream(session, wf.url, what=what, limit=WHEEL_DEADLINE_S, read_timeout=timeout) as resp:
        if resp.status_code >= 400:
            raise Unreachable(f"{wf.url} answered HTTP {resp.status_code}",
                              details=[f"file: {wf.filename}"])
        total = wf.size or (int(resp.headers["Content-Length"])
                            if resp.headers.get("Content-Length", "").isdigit() else None)
        emit(FillEvent("start", wf.filename, i, count, 0, total))
        done = 0
        with part.open("wb") as fh:
            for chunk in httpget.chunks(resp, what=what, size=_CHUNK):
                if cancel.is_set():
                    raise _Cancelled()
                fh.write(chunk)
                h.update(chunk)
                done += len(chunk)
                emit(FillEvent("progress", wf.filename, i, count, done, total))
            fh.flush()
            os.fsync(fh.fileno())
    return h.hexdigest()


# --------------------------------------------------------------------------- serve


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, no access log on stderr (a build streams its own log)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        pass  # a client hanging up mid-file is not our error to print


@contextlib.contextmanager
def serve(directory: Path, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``directory`` over HTTP on loopback; yields the base URL (``http://127.0.0.1:PORT/``).

    Loopback only: a build run with ``network_mode="host"`` reaches it, nothing outside
    the machine does. Port 0 picks a free port, so parallel builds do not collide. The
    directory listing is a valid ``--find-links`` page for pip. Stops on exit.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidInput(f"wheelhouse {directory} does not exist", hint="run the fill step first")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _QuietServer((host, port), handler)
    # A short poll interval makes leaving the context quick (shutdown waits for one poll).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="dlbase-wheelhouse", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def serve_preferring(directory: Path, port: int) -> Iterator[str]:
    """:func:`serve` on ``port`` (part of the install steps' cache key: WHEELHOUSE is a build
    argument); if another build on this machine holds it, on a free one - that build then
    misses the layer cache, which is correct but slower. Port 0: any free port."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(serve(directory, port=port))
        except OSError:
            url = stack.enter_context(serve(directory, port=0))
        yield url
