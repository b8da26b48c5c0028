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
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dlbase.core import fileerrors
from dlbase.core import documents, fsutil
from dlbase.core.documents import Source, expect
from dlbase.core.errors import FileProblem, Missing
from dlbase.vuln import osv

#: Environment variable naming the database folder when --db is not given.
ENV_VAR = "DLBASE_VULN_DB"
#: Suffix of the index written beside an archive; not *.json, so it is never read as a record.
INDEX_SUFFIX = ".dlbase-index"
_INDEX_FORMAT = 1
#: How far ahead of this machine's clock a record's ``modified`` may be (clocks differ by
#: minutes, time zones by hours): a date past it is refused, since one record "modified in
#: 9999" would make the whole database look fresh and hide its age warning.
CLOCK_SKEW = timedelta(days=1)
_RECORD_HINT = "remove or replace the file; `dlbase scan --update` re-downloads the archives"


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
    #: the latest ``modified`` accepted (now, plus the clock skew), taken once per database
    _latest: datetime = field(default_factory=lambda: datetime.now(timezone.utc) + CLOCK_SKEW, repr=False)

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
            return _decode(handle.read(documents.LIMITS["osv-record"].max_bytes + 1), f"{archive}:{member}")

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

    def add(self, record: dict[str, Any], entry: Any = None, source: str | None = None) -> None:
        """Index one record (or ``entry``, a reference to it) under every package it names.

        ``source`` (the file or ``archive:member``) names the record in errors: a record
        whose fields have the wrong type, or whose ``modified`` is not a time or lies in
        the future, is refused (exit 2) rather than indexed under nothing."""
        where = Source(source or str(record.get("id")), FileProblem, _RECORD_HINT)
        self.records += 1
        self._seen_modified(checked_time(record.get("modified"), "modified", where, self._latest))
        if osv.is_withdrawn(record):
            self.withdrawn += 1
            return
        keys = package_keys(record, where)
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
        self._seen_modified(checked_time(summary["newest_modified"], "newest modified",
                                         Source(str(archive), FileProblem, _RECORD_HINT)))
        for eco, count in summary["ecosystems"].items():
            self.ecosystems[eco] = self.ecosystems.get(eco, 0) + count
        for joined, members in summary["members"].items():
            eco, _, name = joined.partition("\x00")
            self.index[(eco, name)].extend((archive, member) for member in members)


def package_keys(record: dict[str, Any], where: Source | None = None) -> list[tuple[str, str]]:
    """The (ecosystem, name) keys of every package a record names, each once; a field of
    the wrong type (``"affected": "torch"``) is an error naming the record.

    The types are checked inline (an archive has 60,000 records, each read once here);
    only a record that fails them is walked again by :func:`_package_problem`, which
    says what is wrong."""
    keys: dict[tuple[str, str], None] = {}
    entries = record.get("affected")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise _package_problem(record, where)
    for affected in entries:
        package = affected.get("package") if isinstance(affected, dict) else False
        if package is None:
            continue
        if not isinstance(package, dict):
            raise _package_problem(record, where)
        eco, name = package.get("ecosystem"), package.get("name")
        if not isinstance(eco, (str, type(None))) or not isinstance(name, (str, type(None))):
            raise _package_problem(record, where)
        if eco and name and osv.applies_to(eco):
            keys[osv.package_key(eco, name)] = None
    return list(keys)


def _package_problem(record: dict[str, Any], where: Source | None) -> Exception:
    """The error naming the first field of ``affected`` that is not of its type."""
    where = where or Source(str(record.get("id")), FileProblem, _RECORD_HINT)
    for i, affected in enumerate(expect(record, "affected", list, where)):
        part = f"affected[{i}]"
        if not isinstance(affected, dict):
            return where.fail(f"{part} must be an object, not {documents.type_word(affected)}")
        package = expect(affected, "package", dict, where, where=part, required=False, default={})
        expect(package, "ecosystem", str, where, where=f"{part}.package", required=False)
        expect(package, "name", str, where, where=f"{part}.package", required=False)
    return where.fail("'affected' is not a list of objects with a package")  # not reached: a field failed above


def checked_time(value: Any, what: str, where: Source, latest: datetime | None = None) -> datetime | None:
    """``value`` as an RFC 3339 time no later than ``latest`` (default: now +
    :data:`CLOCK_SKEW`); None stays None; another type, not a time, or later is an error."""
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        shown = repr(value[:40]) if isinstance(value, str) else documents.type_word(value)
        raise where.fail(f"'{what}' {shown} is not an RFC 3339 time (like 2026-01-27T20:10:54Z)")
    if parsed > (latest or datetime.now(timezone.utc) + CLOCK_SKEW):
        raise where.fail(f"'{what}' {value[:40]!r} lies in the future: the database's age cannot be told "
                         "from a record dated ahead of this machine's clock",
                         hint="remove the record (or check this machine's clock); `dlbase scan --update` "
                              "re-downloads the archives")
    return parsed


def parse_time(value: Any) -> datetime | None:
    """An OSV RFC 3339 timestamp (``2026-01-27T20:10:54Z``, with or without fraction)."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
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
            database.add(_decode(_read(file), str(file)), source=str(file))
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
        cached = documents.read_json_file(index_file, "osv-index", error=FileProblem)
        if isinstance(cached, dict) and all(cached.get(k) == v for k, v in stamp.items()) and _index_shape(cached):
            return cached
    except FileProblem:  # absent, unreadable or damaged: it is only a cache, built again below
        pass
    built = build_archive_index(archive)
    _write_index(index_file, {**stamp, **built})
    return built


def _index_shape(cached: dict[str, Any]) -> bool:
    """Whether a cached index holds what :meth:`Database.add_archive` reads, each of its type
    (an edited or damaged one is rebuilt, never half-used)."""
    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    members, ecosystems = cached.get("members"), cached.get("ecosystems")
    return (count(cached.get("records")) and count(cached.get("withdrawn"))
            and isinstance(cached.get("newest_modified"), (str, type(None)))
            and isinstance(ecosystems, dict) and all(isinstance(k, str) and count(v) for k, v in ecosystems.items())
            and isinstance(members, dict)
            and all(isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
                    for k, v in members.items()))


def build_archive_index(archive: Path) -> dict[str, Any]:
    """Parse every record of an archive once: counts, newest modified, key -> members."""
    scratch = Database(path=archive)
    members: dict[str, list[str]] = defaultdict(list)
    with _open_zip(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            where = f"{archive}:{info.filename}"
            if info.file_size > documents.LIMITS["osv-record"].max_bytes:
                raise FileProblem(f"{where}: {info.file_size:,} bytes unpacked; an OSV record is at most "
                                  f"{documents.LIMITS['osv-record'].max_bytes:,}", hint=_RECORD_HINT)
            with zf.open(info) as handle:
                record = _decode(handle.read(documents.LIMITS["osv-record"].max_bytes + 1), where)
            scratch.add(record, entry=info.filename, source=where)
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
    """The file's bytes, one past the record cap at most (a 300 MB file is not read whole)."""
    try:
        with open(file, "rb") as handle:
            return handle.read(documents.LIMITS["osv-record"].max_bytes + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read {file}: {exc.strerror or exc}") from None


def _decode(raw: bytes, source: str) -> dict[str, Any]:
    """One OSV record through the bounded reader: an object with a string ``id``, and
    ``aliases``/``upstream`` lists of strings (what the report prints) when present."""
    where = Source(source, FileProblem, _RECORD_HINT)
    record = documents.parse_json(raw, "osv-record", where)
    if not isinstance(record, dict) or not record.get("id"):
        raise FileProblem(f"{source} is not an OSV record: no 'id'",
                          hint="remove the file; OSV records are JSON objects with id, modified, affected")
    if not isinstance(record["id"], str):
        expect(record, "id", str, where)  # raises, naming what it is instead
    for key in ("aliases", "upstream"):
        names = record.get(key)
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise where.fail(f"'{key}' must be a list of strings, not {documents.type_word(names)}")
    return record
