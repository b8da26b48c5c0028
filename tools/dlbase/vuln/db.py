"""A vulnerability database on disk: OSV records in a folder, as JSON files and/or OSV's
per-ecosystem ``all.zip`` archives, indexed once by (ecosystem, package).

Loading reads every record once (zip members are streamed one at a time, never
extracted), so the cost is one JSON parse per record; matching an image is then one
dictionary lookup per installed package. The newest ``modified`` date is kept: a scan
against a database that stopped being updated must say how old its knowledge is.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from dlbase.core.errors import FileProblem, Missing
from dlbase.vuln import osv

#: Environment variable naming the database folder when --db is not given.
ENV_VAR = "DLBASE_VULN_DB"


@dataclass
class Database:
    """Records indexed by :func:`dlbase.vuln.osv.package_key`; ``ecosystems`` counts the
    records per (release) ecosystem, ``withdrawn`` the ones skipped as withdrawn."""

    path: Path
    index: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    ecosystems: dict[str, int] = field(default_factory=dict)
    records: int = 0
    withdrawn: int = 0
    newest_modified: datetime | None = None
    sources: list[str] = field(default_factory=list)

    def advisories(self, ecosystem: str, name: str) -> list[dict[str, Any]]:
        return self.index.get(osv.package_key(ecosystem, name), [])

    def covers(self, ecosystem: str) -> bool:
        return self.ecosystems.get(osv.release_ecosystem(ecosystem), 0) > 0

    def age_days(self, now: datetime | None = None) -> float | None:
        if self.newest_modified is None:
            return None
        return ((now or datetime.now(timezone.utc)) - self.newest_modified).total_seconds() / 86400

    def add(self, record: dict[str, Any]) -> None:
        """Index one record under every package it names."""
        self.records += 1
        modified = parse_time(record.get("modified"))
        if modified and (self.newest_modified is None or modified > self.newest_modified):
            self.newest_modified = modified
        if osv.is_withdrawn(record):
            self.withdrawn += 1
            return
        seen: set[tuple[str, str]] = set()
        counted: set[str] = set()
        for affected in record.get("affected") or []:
            package = affected.get("package") or {}
            eco, name = package.get("ecosystem"), package.get("name")
            if not eco or not name or not osv.applies_to(str(eco)):
                continue
            key = osv.package_key(str(eco), str(name))
            if key[0] not in counted:
                self.ecosystems[key[0]] = self.ecosystems.get(key[0], 0) + 1
                counted.add(key[0])
            if key not in seen:
                self.index[key].append(record)
                seen.add(key)


def parse_time(value: Any) -> datetime | None:
    """An OSV RFC 3339 timestamp (``2026-01-27T20:10:54Z``, with or without fraction)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def resolve_path(db: str | Path | None) -> Path:
    """--db, else $DLBASE_VULN_DB; neither is an error that says how to get one."""
    chosen = db or os.environ.get(ENV_VAR)
    if not chosen:
        raise Missing("no vulnerability database given: without one nothing can be said about "
                      "known vulnerabilities (this is not '0 vulnerabilities')",
                      hint=f"pass --db DIR or set {ENV_VAR}=DIR (a folder of OSV records or OSV's "
                           "all.zip files); `dlbase scan --update --db DIR` downloads them")
    return Path(chosen)


def load(db: str | Path | None) -> Database:
    """Read every OSV record under the folder (``*.json``, ``*.zip``; recursively)."""
    path = resolve_path(db)
    if not path.exists():
        raise Missing(f"vulnerability database {path} does not exist",
                      hint=f"download one: `dlbase scan --update --db {path}` (or point --db at a folder "
                           "of OSV records)")
    database = Database(path=path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                 if p.is_file() and p.suffix in (".json", ".zip"))
    for file in files:
        for source, raw in _raw_records(file):
            database.add(_decode(raw, source))
        database.sources.append(str(file))
    if database.records == 0:
        raise Missing(f"vulnerability database {path} holds no OSV records (*.json or all.zip)",
                      hint=f"download them: `dlbase scan --update --db {path}`")
    return database


def _raw_records(file: Path) -> Iterator[tuple[str, bytes]]:
    if file.suffix == ".json":
        yield str(file), _read(file)
        return
    try:
        with zipfile.ZipFile(file) as archive:
            for member in archive.infolist():
                if member.is_dir() or not member.filename.endswith(".json"):
                    continue
                with archive.open(member) as handle:
                    yield f"{file}:{member.filename}", handle.read()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise FileProblem(f"{file} is not a readable zip archive: {exc}",
                          hint="download it again: `dlbase scan --update --db DIR`") from None


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
