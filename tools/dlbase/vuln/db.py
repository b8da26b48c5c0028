"""A vulnerability database on disk: OSV records in a folder, as JSON files and/or OSV's
per-ecosystem ``all.zip`` archives, indexed once by (ecosystem, package).

The first read of an archive parses every record once (members streamed one at a time,
never extracted) and leaves an index beside it (``all.zip.dlbase-index``: which members
name which package, plus the counts and the newest ``modified`` date), valid while the
archive's size and mtime are unchanged. Later scans read that index and parse only the
records of the packages an image installs: a few hundred of 60,000. Matching is then
one dictionary lookup per installed package. The newest ``modified`` date is kept: a scan
against a database that stopped being updated must say how old its knowledge is.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlbase.core import fileerrors
from dlbase.core import fsutil
from dlbase.core.errors import FileProblem, Missing
from dlbase.vuln import osv

#: Environment variable naming the database folder when --db is not given.
ENV_VAR = "DLBASE_VULN_DB"
#: Suffix of the index written beside an archive; not *.json, so it is never read as a record.
INDEX_SUFFIX = ".dlbase-index"
_INDEX_FORMAT = 1


@dataclass
class Database:
    """Records indexed by :func:`dlbase.vuln.osv.package_key`; ``ecosystems`` counts the
    records per (release) ecosystem, ``withdrawn`` the ones skipped as withdrawn."""

    path: Path
    #: key -> records, or (archive, member) references read on first use
    index: dict[tuple[str, str], list[Any]] = field(default_factory=lambda: defaultdict(list))
    ecosystems: dict[str, int] = field(default_factory=dict)
    records: int = 0
    withdrawn: int = 0
    newest_modified: datetime | None = None
    sources: list[str] = field(default_factory=list)

    _archives: dict[Path, zipfile.ZipFile] = field(default_factory=dict, repr=False)

    def advisories(self, ecosystem: str, name: str) -> list[dict[str, Any]]:
        entries = self.index.get(osv.package_key(ecosystem, name), [])
        for i, entry in enumerate(entries):
            if isinstance(entry, tuple):
                entries[i] = self._member(*entry)
        return entries

    def _member(self, archive: Path, member: str) -> dict[str, Any]:
        if archive not in self._archives:
            self._archives[archive] = _open_zip(archive)
        with self._archives[archive].open(member) as handle:
            return _decode(handle.read(), f"{archive}:{member}")

    def close(self) -> None:
        for archive in self._archives.values():
            archive.close()
        self._archives.clear()

    def covers(self, ecosystem: str) -> bool:
        return self.ecosystems.get(osv.release_ecosystem(ecosystem), 0) > 0

    def age_days(self, now: datetime | None = None) -> float | None:
        if self.newest_modified is None:
            return None
        return ((now or datetime.now(timezone.utc)) - self.newest_modified).total_seconds() / 86400

    def add(self, record: dict[str, Any], entry: Any = None) -> None:
        """Index one record (or ``entry``, a reference to it) under every package it names."""
        self.records += 1
        self._seen_modified(parse_time(record.get("modified")))
        if osv.is_withdrawn(record):
            self.withdrawn += 1
            return
        keys = package_keys(record)
        for eco in dict.fromkeys(key[0] for key in keys):
            self.ecosystems[eco] = self.ecosystems.get(eco, 0) + 1
        for key in keys:
            self.index[key].append(record if entry is None else entry)

    def _seen_modified(self, modified: datetime | None) -> None:
        if modified and (self.newest_modified is None or modified > self.newest_modified):
            self.newest_modified = modified

    def add_archive(self, archive: Path) -> None:
        """Index an all.zip through its index file (written on first use)."""
        summary = archive_index(archive)
        self.records += summary["records"]
        self.withdrawn += summary["withdrawn"]
        self._seen_modified(parse_time(summary["newest_modified"]))
        for eco, count in summary["ecosystems"].items():
            self.ecosystems[eco] = self.ecosystems.get(eco, 0) + count
        for joined, members in summary["members"].items():
            eco, _, name = joined.partition("\x00")
            self.index[(eco, name)].extend((archive, member) for member in members)


def package_keys(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The (ecosystem, name) keys of every package a record names, each once."""
    keys: dict[tuple[str, str], None] = {}
    for affected in record.get("affected") or []:
        package = affected.get("package") or {}
        eco, name = package.get("ecosystem"), package.get("name")
        if eco and name and osv.applies_to(str(eco)):
            keys[osv.package_key(str(eco), str(name))] = None
    return list(keys)


def parse_time(value: Any) -> datetime | None:
    """An OSV RFC 3339 timestamp (``2026-01-27T20:10:54Z``, with or without fraction)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def configured(db: str | Path | None) -> Path | None:
    """--db, else $DLBASE_VULN_DB, else None (for `push --sign`, where no database means no scan)."""
    chosen = db or os.environ.get(ENV_VAR)
    return Path(chosen) if chosen else None


def resolve_path(db: str | Path | None) -> Path:
    """--db, else $DLBASE_VULN_DB; neither is an error that says how to get one."""
    chosen = configured(db)
    if not chosen:
        raise Missing("no vulnerability database given: without one nothing can be said about "
                      "known vulnerabilities (this is not '0 vulnerabilities')",
                      hint=f"pass --db DIR or set {ENV_VAR}=DIR (a folder of OSV records or OSV's "
                           "all.zip files); `dlbase scan --update --db DIR` downloads them")
    return chosen


def load(db: str | Path | None) -> Database:
    """Read every OSV record under the folder (``*.json``, ``*.zip``; recursively)."""
    path = resolve_path(db)
    if fileerrors.not_a_file(path) not in (None, "a folder"):  # a folder of records, or one file
        fileerrors.is_file(path, what="vulnerability database")
    if not path.exists():
        raise Missing(f"vulnerability database {path} does not exist",
                      hint=f"download one: `dlbase scan --update --db {path}` (or point --db at a folder "
                           "of OSV records)")
    database = Database(path=path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                 if p.is_file() and p.suffix in (".json", ".zip"))
    for file in files:
        if file.suffix == ".zip":
            database.add_archive(file)
        else:
            database.add(_decode(_read(file), str(file)))
        database.sources.append(str(file))
    if database.records == 0:
        raise Missing(f"vulnerability database {path} holds no OSV records (*.json or all.zip)",
                      hint=f"download them: `dlbase scan --update --db {path}`")
    return database


def _open_zip(file: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise FileProblem(f"{file} is not a readable zip archive: {exc}",
                          hint="download it again: `dlbase scan --update --db DIR`") from None


def archive_index(archive: Path) -> dict[str, Any]:
    """The archive's index: read from beside it when it describes this very file (size and
    mtime), else built by parsing every member and written there for the next scan."""
    stat = archive.stat()
    stamp = {"format": _INDEX_FORMAT, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    index_file = archive.with_name(archive.name + INDEX_SUFFIX)
    try:
        cached = json.loads(index_file.read_text(encoding="utf-8"))
        if all(cached.get(k) == v for k, v in stamp.items()):
            return cached
    except (OSError, ValueError):
        pass
    built = build_archive_index(archive)
    _write_index(index_file, {**stamp, **built})
    return built


def build_archive_index(archive: Path) -> dict[str, Any]:
    """Parse every record of an archive once: counts, newest modified, key -> members."""
    scratch = Database(path=archive)
    members: dict[str, list[str]] = defaultdict(list)
    with _open_zip(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            with zf.open(info) as handle:
                record = _decode(handle.read(), f"{archive}:{info.filename}")
            scratch.add(record, entry=info.filename)
    for key, entries in scratch.index.items():
        members["\x00".join(key)].extend(entries)
    return {"records": scratch.records, "withdrawn": scratch.withdrawn, "ecosystems": scratch.ecosystems,
            "newest_modified": scratch.newest_modified.isoformat() if scratch.newest_modified else None,
            "members": members}


def _write_index(path: Path, body: dict[str, Any]) -> None:
    """Atomically, and only where the database folder is writable (a read-only mirror
    just gets parsed each time)."""
    with contextlib.suppress(FileProblem):
        fsutil.write_text_atomic(path, json.dumps(body, separators=(",", ":")))


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise FileProblem(f"cannot read {file}: {exc.strerror or exc}") from None


def _decode(raw: bytes, source: str) -> dict[str, Any]:
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileProblem(f"{source} is not an OSV record: not valid JSON ({exc})",
                          hint="remove or replace the file; `dlbase scan --update` re-downloads the archives") from None
    if not isinstance(record, dict) or not record.get("id"):
        raise FileProblem(f"{source} is not an OSV record: no 'id'",
                          hint="remove the file; OSV records are JSON objects with id, modified, affected")
    return record
