"""Read a wheel's core metadata (Requires-Dist, Requires-Python) from a package index.

Why: the facts of a torch release (its CUDA line, cuDNN, NCCL, Triton, Pythons) are in
its wheel's METADATA, and a torch wheel is 500+ MB. The simple index lists the files
(build/wheelhouse.py reads it); PEP 658 puts the METADATA file beside each wheel as
``<wheel url>.metadata``, so reading it costs a few kB. Where an index does not serve
those files (a mirror, a proxy), the METADATA member is read out of the wheel's zip with
HTTP range requests: the zip's central directory sits at the end of the file, so only
its tail and the one member are fetched (pip's "lazy wheel" idea), still kilobytes. A
server that does not announce ``Accept-Ranges: bytes`` is not asked, and an answer other
than 206 is closed unread: a mirror that ignores ``Range`` would otherwise send the whole
900 MB wheel. Each read stops at the bytes it asked for, and one deadline covers every
request of one :func:`read` (:mod:`dlbase.core.httpget`).
Each result says which of the two it came from, because compat.yaml records the source
of every fact.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser

import requests
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from dlbase.core import deadline as deadlines
from dlbase.core import httpget
from dlbase.core.errors import BadAnswer, InvalidInput, Unreachable
from dlbase.define import simpleindex
from dlbase.define.wheeltags import platform_tags_for, target_tags

TIMEOUT_S = 30.0
#: Seconds one release's metadata may take in all (listing, .metadata or range reads).
DEADLINE_S = 60.0
#: A METADATA file is kilobytes; torch's is about 10 kB.
METADATA_MAX = 16 << 20


@dataclass(frozen=True)
class WheelMetadata:
    """What one wheel's METADATA says, and where it was read."""

    name: str
    version: str
    filename: str
    url: str
    requires_python: str | None
    requires_dist: tuple[str, ...]
    via: str  # "pep658" (the index's .metadata file) or "range" (read out of the wheel)

    @property
    def source(self) -> str:
        how = "PEP 658 metadata" if self.via == "pep658" else "METADATA read from the wheel by HTTP range"
        return f"{self.filename} ({how})"

    def requirements(self, environment: dict[str, str] | None = None) -> list[Requirement]:
        """Requires-Dist entries that apply to ``environment`` (markers evaluated; extras off)."""
        env = {"extra": "", **(environment or {})}
        out = []
        for text in self.requires_dist:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate(env):
                out.append(req)
        return out

    def requirement(self, name: str, environment: dict[str, str] | None = None,
                    extras: tuple[str, ...] = ()) -> Requirement | None:
        """The first Requires-Dist on ``name`` that applies (with one of ``extras`` switched on)."""
        want = canonicalize_name(name)
        for extra in (("",) + tuple(extras)):
            for req in self.requirements({**(environment or {}), "extra": extra}):
                if canonicalize_name(req.name) == want:
                    return req
        return None


class _RangeFile(io.RawIOBase):
    """A seekable read-only view of a remote file, one HTTP range request per read."""

    def __init__(self, session: requests.Session, url: str, size: int, timeout: float):
        self._s, self._url, self._size, self._timeout, self._pos = session, url, size, timeout, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = {io.SEEK_SET: offset, io.SEEK_CUR: self._pos + offset, io.SEEK_END: self._size + offset}[whence]
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        count = min(len(buffer), self._size - self._pos)
        if count <= 0:
            return 0
        what = f"bytes {self._pos}-{self._pos + count - 1} of a wheel"
        with httpget.stream(self._s, self._url, what=what, read_timeout=self._timeout,
                            headers={"Range": f"bytes={self._pos}-{self._pos + count - 1}"}) as resp:
            if resp.status_code != 206:  # closed unread: a 200 here is the whole wheel
                raise Unreachable(f"{self._url} does not answer range requests (HTTP {resp.status_code})",
                                  hint="use an index that serves PEP 658 .metadata files")
            data = b"".join(httpget.chunks(resp, what=what, cap=count))
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


def _listing(session: requests.Session, index_url: str, project: str, timeout: float):
    """The index's files of ``project`` (wheelhouse's reader), with a hint for this use."""
    try:
        return simpleindex.files(session, index_url, project, timeout)
    except Unreachable as exc:
        exc.hint = "read the metadata where the index can be reached, or name another with --index"
        raise


def _wheels_of(files: list, version: str | None = None):
    """(filename, url, version, tags) of each wheel in an index listing (of ``version`` only, if given)."""
    want = None if version is None else Version(version)
    for filename, url, *_ in files:
        try:
            _name, wv, _build, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if want is None or wv == want:
            yield filename, url, wv, tags


def _parse(text: str) -> tuple[str | None, tuple[str, ...], str, str]:
    msg = HeaderParser().parsestr(text, headersonly=True)
    return (msg.get("Requires-Python"), tuple(msg.get_all("Requires-Dist") or ()),
            str(msg.get("Name", "")), str(msg.get("Version", "")))


def _fetch_pep658(session: requests.Session, url: str, timeout: float) -> str | None:
    answer = httpget.get(session, url + ".metadata", what="the wheel's PEP 658 metadata", cap=METADATA_MAX,
                         read_timeout=timeout)
    return answer.text if answer.status == 200 else None


def _fetch_by_range(session: requests.Session, url: str, timeout: float) -> str:
    head = httpget.get(session, url, what="the wheel's size", cap=0, method="HEAD", read_timeout=timeout)
    size = head.headers.get("Content-Length", "")
    if head.status >= 400 or not size.isdigit() or int(size) <= 0:
        raise Unreachable(f"{url} answered HTTP {head.status} without a length",
                          hint="the index lists a file it does not serve; try again later")
    if head.headers.get("Accept-Ranges", "").strip().lower() != "bytes":
        raise Unreachable(f"{url} does not announce range requests (no 'Accept-Ranges: bytes') and serves "
                          "no PEP 658 .metadata file: its METADATA cannot be read without the whole wheel",
                          hint="use an index that serves PEP 658 .metadata files or range requests "
                               "(PyPI does both), with --index")
    try:
        with zipfile.ZipFile(io.BufferedReader(_RangeFile(session, head.url, int(size), timeout), 1 << 16)) as wheel:
            names = [n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if not names:
                raise InvalidInput(f"{url} has no .dist-info/METADATA", hint="it is not a wheel")
            info = wheel.getinfo(names[0])
            if info.file_size > METADATA_MAX:
                raise BadAnswer(f"{url}: its METADATA claims {info.file_size} bytes; more than "
                                f"{METADATA_MAX} is not read")
            return wheel.read(info).decode("utf-8", errors="replace")
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"{url} is not a readable wheel: {exc}") from None


def versions(index_url: str, project: str, *, session: requests.Session | None = None,
             timeout: float = TIMEOUT_S) -> list[str]:
    """Every release of ``project`` that has a wheel on the index, newest first."""
    files = _listing(session or requests.Session(), index_url, project, timeout)
    if files is None:
        raise InvalidInput(f"{project} is not on {index_url}")
    found = {wv for _f, _u, wv, _t in _wheels_of(files)}
    return [str(v) for v in sorted(found, reverse=True)]


def read(index_url: str, project: str, version: str, *, python: str, platform: str,
         session: requests.Session | None = None, timeout: float = TIMEOUT_S) -> WheelMetadata:
    """The METADATA of the wheel of ``project==version`` that a CPython ``python`` on
    ``platform`` (uv's spelling, x86_64-manylinux_2_28) would install."""
    with deadlines.within(f"the metadata of {project} {version} on {index_url}", DEADLINE_S):
        return _read(index_url, project, version, python=python, platform=platform,
                     session=session or requests.Session(), timeout=timeout)


def _read(index_url: str, project: str, version: str, *, python: str, platform: str,
          session: requests.Session, timeout: float) -> WheelMetadata:
    files = _listing(session, index_url, project, timeout)
    if files is None:
        raise InvalidInput(f"{project} is not on {index_url}", hint="check the name and the index")
    priority = {t: i for i, t in enumerate(target_tags(python, platform_tags_for(platform)))}
    best: tuple[int, str, str] | None = None
    for filename, url, _wv, tags in _wheels_of(files, version):
        ranks = [priority[t] for t in tags if t in priority]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), filename, url)
    if best is None:
        raise InvalidInput(f"{project} {version} has no wheel for Python {python} on {platform} on {index_url}",
                           hint=f"releases there: {', '.join(versions(index_url, project, session=session)[:8])}")
    _rank, filename, url = best
    text = _fetch_pep658(session, url, timeout)
    via = "pep658"
    if text is None:
        text, via = _fetch_by_range(session, url, timeout), "range"
    requires_python, requires_dist, name, meta_version = _parse(text)
    return WheelMetadata(name=name or project, version=meta_version or version, filename=filename, url=url,
                         requires_python=requires_python, requires_dist=requires_dist, via=via)


def wheel_pythons(index_url: str, project: str, version: str, *, platform: str,
                  session: requests.Session | None = None, timeout: float = TIMEOUT_S) -> list[str]:
    """The CPython versions (3.10, 3.11, ...) with a version-specific wheel for ``platform``
    (free-threaded ``t`` builds are not counted: the images run the standard interpreter)."""
    files = _listing(session or requests.Session(), index_url, project, timeout) or []
    accepted = set(platform_tags_for(platform))
    found: set[tuple[int, int]] = set()
    for _filename, _url, _wv, tags in _wheels_of(files, version):
        for tag in tags:
            if tag.platform in accepted and tag.interpreter.startswith("cp") and tag.abi == tag.interpreter:
                digits = tag.interpreter[2:]
                found.add((int(digits[0]), int(digits[1:])))
    return [f"{a}.{b}" for a, b in sorted(found)]
