"""Download OSV's per-ecosystem archives (``<base>/<ecosystem>/all.zip``) into a folder.

Over HTTPS only, except to a loopback host (a test's server, a local mirror): a
vulnerability database fetched over plain HTTP from the network could be swapped in
transit to hide findings, so a redirect that leaves https is refused too
(:mod:`dlbase.core.httpget`). Each archive has one deadline, however slowly its server
sends (:mod:`dlbase.core.deadline`).

An update is all or nothing: every archive is downloaded, checked to be a readable zip
of JSON records and indexed into a staging folder beside the database; what the update
does not replace is linked in; then the staging folder takes the database's place in
one rename (:mod:`dlbase.core.folderswap`). A failure at any point leaves the previous
database exactly as it was, and no folder the update created.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests

from dlbase.core import folderswap, httpget
from dlbase.core import deadline as deadlines
from dlbase.core.errors import BadAnswer, FileProblem, InvalidInput, Unreachable
from dlbase.core import urlpolicy
from dlbase.vuln import db

DEFAULT_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
#: Seconds one archive's download may take in all (PyPI's is tens of MB).
DEADLINE_S = 600.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Downloaded:
    ecosystem: str
    path: Path
    size_bytes: int
    records: int

    def to_dict(self) -> dict:
        return {"ecosystem": self.ecosystem, "path": str(self.path), "size_bytes": self.size_bytes,
                "records": self.records}


def check_base_url(url: str) -> str:
    return urlpolicy.fetch_url(url, where="--base-url", example=DEFAULT_BASE_URL)


def archive_path(folder: Path, ecosystem: str) -> Path:
    return folder / ecosystem / "all.zip"


def download(folder: Path, ecosystems: list[str], *, base_url: str = DEFAULT_BASE_URL,
             limit: float = DEADLINE_S) -> list[Downloaded]:
    """Fetch and index every archive into a staging folder, then swap it in (nothing
    replaced, nothing left behind on failure). ``ecosystems`` are OSV names, checked by
    the caller against the matrix (:mod:`dlbase.vuln.ecosystems`)."""
    base = check_base_url(base_url)
    for ecosystem in ecosystems:
        _check_name(ecosystem)
    folder = Path(os.path.realpath(folder))  # a --db that is a link: replace what it points at
    if folder.exists() and not folder.is_dir():
        raise FileProblem(f"--db {folder} is a file; it names the folder the archives go into",
                          hint="name a folder (it is created when missing)")
    created = folderswap.make_parents(folder.parent)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.update-", dir=folder.parent))
    except OSError as exc:
        folderswap.remove_empty(created)
        raise FileProblem(f"cannot write beside {folder}: {exc.strerror or exc}",
                          hint="name a --db folder in a writable place") from None
    try:
        got = []
        session = deadlines.session()
        for ecosystem in ecosystems:
            staged = archive_path(staging, ecosystem)
            staged.parent.mkdir(parents=True)
            url = f"{base}/{quote(ecosystem, safe='')}/all.zip"
            size = _fetch(session, url, staged, limit, what=f"OSV's {ecosystem} archive")
            records = _check_archive(staged, url)
            db.archive_index(staged)  # indexed now, so the next scan reads only what it needs
            got.append(Downloaded(ecosystem, archive_path(folder, ecosystem), size, records))
        folderswap.carry_over(folder, staging)
        folderswap.swap_in(staging, folder)
        return got
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        folderswap.remove_empty(created)
        raise


def _check_name(ecosystem: str) -> None:
    """The name becomes a folder under the database: one plain folder name, never a path."""
    if not ecosystem.strip() or ecosystem in (".", "..") or "/" in ecosystem or "\\" in ecosystem \
            or "\x00" in ecosystem:
        raise InvalidInput(f"ecosystem {ecosystem!r} is not a folder name; an OSV ecosystem is a name "
                           "such as PyPI or Debian:12, never a path")


def _fetch(session: requests.Session, url: str, path: Path, limit: float, *, what: str) -> int:
    size = 0
    try:
        with httpget.stream(session, url, what=what, limit=limit) as response, path.open("wb") as out:
            if response.status_code != 200:
                raise Unreachable(f"{url}: HTTP {response.status_code}",
                                  hint="check the ecosystem name (OSV's ecosystems.txt lists them) and --base-url")
            for chunk in httpget.chunks(response, what=what, size=_CHUNK):
                out.write(chunk)
                size += len(chunk)
    except (Unreachable, BadAnswer) as exc:
        hint = "; ".join(filter(None, [exc.hint, "the previous database is unchanged"]))
        raise exc.reworded(exc.message, hint=hint) from None
    return size


def _check_archive(path: Path, url: str) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = [n for n in archive.namelist() if n.endswith(".json")]
    except zipfile.BadZipFile as exc:
        raise FileProblem(f"{url} did not send a zip archive ({exc})",
                          hint="check --base-url; the previous database is unchanged") from None
    if bad is not None:
        raise FileProblem(f"{url}: archive member {bad} is damaged", hint="run the update again")
    return len(names)
