"""Download OSV's per-ecosystem archives (``<base>/<ecosystem>/all.zip``) into a folder.

Over HTTPS only, except to a loopback host (a test's server, a local mirror): a
vulnerability database fetched over plain HTTP from the network could be swapped in
transit to hide findings. Each archive is written to a temporary file beside its place,
checked to be a readable zip of JSON records, and moved into place only when every
requested archive arrived: a failed update leaves the previous database as it was.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests

from dlbase.core.errors import FileProblem, Unreachable
from dlbase.core import urlpolicy
from dlbase.vuln import db

DEFAULT_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
#: The ecosystems the matrix's images install from: Python, and the base OS releases.
DEFAULT_ECOSYSTEMS = ("PyPI", "Debian:12", "Debian:13", "Ubuntu:22.04:LTS")
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
             timeout: float = 60.0) -> list[Downloaded]:
    """Fetch every archive, then move them all into place (nothing replaced on failure)."""
    base = check_base_url(base_url)
    folder.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path, Downloaded]] = []
    try:
        for ecosystem in ecosystems:
            final = archive_path(folder, ecosystem)
            final.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp_name = tempfile.mkstemp(prefix=".all.zip.", suffix=".part", dir=final.parent)
            tmp = Path(tmp_name)
            staged.append((tmp, final, Downloaded(ecosystem, final, 0, 0)))
            url = f"{base}/{quote(ecosystem, safe='')}/all.zip"
            size = _fetch(url, handle, timeout)
            records = _check_archive(tmp, url)
            staged[-1] = (tmp, final, Downloaded(ecosystem, final, size, records))
        for tmp, final, _info in staged:
            os.replace(tmp, final)
            db.archive_index(final)  # indexed now, so the next scan reads only what it needs
        return [info for _tmp, _final, info in staged]
    finally:
        for tmp, _final, _info in staged:
            tmp.unlink(missing_ok=True)


def _fetch(url: str, handle: int, timeout: float) -> int:
    size = 0
    with os.fdopen(handle, "wb") as out:
        try:
            with requests.get(url, stream=True, timeout=timeout) as response:
                if response.status_code != 200:
                    raise Unreachable(f"{url}: HTTP {response.status_code}",
                                      hint="check the ecosystem name (OSV's ecosystems.txt lists them) and --base-url")
                for chunk in response.iter_content(_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
        except requests.RequestException as exc:
            raise Unreachable(f"cannot download {url}: {exc}",
                              hint="check this machine's network and proxy; the previous database is unchanged") from None
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
