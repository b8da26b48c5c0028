"""Matching installed versions against OSV advisories, with real records as fixtures
(tests/unit/data/osv/README.md says where each comes from). Edge cases of the OSV range
semantics that no fixture exercises use small records written here, marked synthetic."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from dlbase.core.errors import ExitCode, FileProblem, Missing
from dlbase.define.lock import Lock, Pinned
from dlbase.vuln import db as db_mod
from dlbase.vuln import match, osv, severity
from dlbase.image.inventory import Inventory, Package, against_lock, parse_dpkg_status, parse_os_release

DATA = Path(__file__).parent / "data" / "osv"


@pytest.fixture(scope="module")
def fixtures() -> db_mod.Database:
    return db_mod.load(DATA)


def pypi(name: str, version: str) -> Package:
    return Package("PyPI", name, version, (name,), f"pkg:pypi/{name}")


def deb(source: str, version: str, *binaries: str, eco: str = "Debian:12") -> Package:
    return Package(eco, source, version, binaries or (source,), f"pkg:deb/debian/{source}?arch=source")


def found(db, *packages: Package) -> dict[str, match.Finding]:
    return {f.id: f for f in match.find(list(packages), db)}


def test_torch_2_6_0_has_the_two_advisories_of_the_issue_and_not_the_old_one(fixtures) -> None:
    got = found(fixtures, pypi("torch", "2.6.0"))
    assert set(got) == {"PYSEC-2025-208", "PYSEC-2026-2286"}  # PYSEC-2024-251 was fixed in 2.2.0
    assert got["PYSEC-2025-208"].fixed == ["2.7.1"] and "CVE-2025-55558" in got["PYSEC-2025-208"].aliases
    weights_only = got["PYSEC-2026-2286"]
    assert weights_only.fixed == ["2.10.0"]
    assert weights_only.aliases[0] == "CVE-2026-24747" and "GHSA-63cw-57p8-fm3p" in weights_only.aliases
    # Severity from the CVSS vector, computed by the cvss library (not a stated number).
    assert (got["PYSEC-2025-208"].severity, got["PYSEC-2025-208"].score) == ("HIGH", 7.5)
    assert (weights_only.severity, weights_only.score) == ("HIGH", 8.8)


@pytest.mark.parametrize("version, expected", [
    ("2.1.2", {"PYSEC-2024-251", "PYSEC-2025-208", "PYSEC-2026-2286"}),
    ("2.2.0", {"PYSEC-2025-208", "PYSEC-2026-2286"}),
    ("2.6.0+cu124", {"PYSEC-2025-208", "PYSEC-2026-2286"}),  # a local build of 2.6.0
    ("2.7.1", {"PYSEC-2026-2286"}),
    ("2.9.1", {"PYSEC-2026-2286"}),
    ("2.10.0", set()),  # PEP 440: 2.10.0 > 2.9.1 (a string comparison says otherwise)
    ("2.15.0", set()),
])
def test_torch_versions_across_the_fixes(fixtures, version: str, expected: set[str]) -> None:
    assert set(found(fixtures, pypi("torch", version))) == expected


def test_github_record_names_pytorch_so_it_matches_only_that_name(fixtures) -> None:
    """As published, GHSA-63cw-57p8-fm3p's package is `pytorch` on PyPI; PEP 503 names."""
    assert set(found(fixtures, pypi("PyTorch", "2.6.0"))) == {"GHSA-63cw-57p8-fm3p"}
    assert found(fixtures, pypi("PyTorch", "2.6.0"))["GHSA-63cw-57p8-fm3p"].severity == "HIGH"


def test_records_of_one_cve_are_one_finding(fixtures) -> None:
    """Two records, one vulnerability: the finding carries both ids (synthetic second record)."""
    database = db_mod.Database(path=DATA)
    for path in (DATA / "pypi").glob("*.json"):
        database.add(json.loads(path.read_text()))
    twin = json.loads((DATA / "pypi" / "GHSA-63cw-57p8-fm3p.json").read_text())
    twin["affected"][0]["package"]["name"] = "torch"  # as if GitHub had named the package torch
    database.add(twin)
    got = match.find([pypi("torch", "2.6.0")], database)
    assert [f.id for f in got].count("PYSEC-2026-2286") == 1 and len(got) == 2
    merged = next(f for f in got if f.id == "PYSEC-2026-2286")
    assert sorted(merged.records) == ["GHSA-63cw-57p8-fm3p", "PYSEC-2026-2286"]


@pytest.mark.parametrize("version, affected", [
    ("2.36-9+deb12u2", True),
    ("2.36-9+deb12u3", False),   # the fix
    ("2.36-9+deb12u10", False),  # dpkg order: u10 > u3 (a string comparison says otherwise)
    ("2.36-9+deb12u14", False),  # what the bootstrapped base carries today
    ("2.36-9", True),
])
def test_glibc_looney_tunables_in_bookworm(fixtures, version: str, affected: bool) -> None:
    got = found(fixtures, deb("glibc", version, "libc6", "libc-bin"))
    assert ("DSA-5514-1" in got) is affected
    if affected:
        assert got["DSA-5514-1"].aliases == ["CVE-2023-4911"] and got["DSA-5514-1"].fixed == ["2.36-9+deb12u3"]
        assert got["DSA-5514-1"].severity == "UNKNOWN"  # Debian records carry no CVSS: said, not guessed


def test_debian_release_entries_do_not_cross(fixtures) -> None:
    """The Debian:11 entry (fixed 2.31-13+deb11u7) says nothing about a Debian:12 install."""
    assert found(fixtures, deb("glibc", "2.31-13+deb11u5")) .keys() == {"DSA-5514-1"}  # Debian:12 range
    assert not found(fixtures, deb("glibc", "2.36-9+deb12u14", eco="Debian:11"))


def test_unfixed_debian_advisory_says_no_fix(fixtures) -> None:
    got = found(fixtures, deb("apt", "2.6.1", "apt", "libapt-pkg6.0"))
    assert got["DEBIAN-CVE-2011-3374"].fixed_in == "no fix published"
    assert not found(fixtures, deb("apt", "2.6.1", eco="Ubuntu:22.04"))


def test_database_stats(fixtures) -> None:
    assert fixtures.records == 7 and fixtures.withdrawn == 0
    assert fixtures.newest_modified.isoformat() == "2026-11-20T00:00:00+00:00"
    assert fixtures.covers("Debian:12") and fixtures.covers("PyPI") and not fixtures.covers("Ubuntu:22.04")


def test_all_zip_is_read_like_the_folder(tmp_path: Path, fixtures) -> None:
    archive = tmp_path / "PyPI" / "all.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(DATA.rglob("*.json")):
            zf.write(path, path.name)
    from_zip = db_mod.load(tmp_path)
    assert from_zip.records == fixtures.records
    assert {f.id for f in match.find([pypi("torch", "2.6.0")], from_zip)} == {"PYSEC-2025-208", "PYSEC-2026-2286"}


def test_archive_index_is_reused_until_the_archive_changes(tmp_path: Path, monkeypatch) -> None:
    archive = tmp_path / "PyPI" / "all.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((DATA / "pypi").glob("*.json")):
            zf.write(path, path.name)
    db_mod.load(tmp_path)
    index = archive.with_name("all.zip" + db_mod.INDEX_SUFFIX)
    assert index.is_file() and json.loads(index.read_text())["records"] == 5
    built: list[Path] = []
    real = db_mod.build_archive_index
    monkeypatch.setattr(db_mod, "build_archive_index", lambda a: built.append(a) or real(a))
    again = db_mod.load(tmp_path)
    assert not built and {f.id for f in match.find([pypi("torch", "2.6.0")], again)} == {"PYSEC-2025-208",
                                                                                        "PYSEC-2026-2286"}
    with zipfile.ZipFile(archive, "a") as zf:  # a newer archive: its index is rebuilt, not trusted
        zf.write(DATA / "debian" / "DSA-5514-1.json", "DSA-5514-1.json")
    assert db_mod.load(tmp_path).records == 6 and built == [archive]


# ---------------------------------------------------------------- OSV semantics (synthetic records)

def rec(events=None, versions=None, kind="ECOSYSTEM", eco="PyPI", name="demo", **extra) -> dict:
    affected = {"package": {"ecosystem": eco, "name": name}}
    if events is not None:
        affected["ranges"] = [{"type": kind, "events": events}]
    if versions is not None:
        affected["versions"] = versions
    return {"id": "TEST-1", "modified": "2026-01-01T00:00:00Z", "affected": [affected], **extra}


def hits(record: dict, version: str, eco: str = "PyPI", name: str = "demo") -> bool:
    database = db_mod.Database(path=DATA)
    database.add(record)
    return bool(match.find([Package(eco, name, version, (name,), "")], database))


@pytest.mark.parametrize("version, expected", [("0.9", False), ("1.0", True), ("1.4", True), ("1.5", False),
                                               ("2.0", True), ("2.2", True), ("2.3", False)])
def test_introduced_fixed_and_last_affected_intervals(version: str, expected: bool) -> None:
    record = rec([{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"last_affected": "2.2"}])
    assert hits(record, version) is expected


def test_limit_caps_an_open_range() -> None:
    record = rec([{"introduced": "0"}, {"limit": "3.0"}])
    assert hits(record, "2.9") and not hits(record, "3.0")


def test_semver_range_uses_semver_order() -> None:
    record = rec([{"introduced": "1.0.0-alpha"}, {"fixed": "1.0.0"}], kind="SEMVER")
    assert hits(record, "1.0.0-beta.2") and not hits(record, "1.0.0") and not hits(record, "0.9.0")


def test_versions_list_without_ranges() -> None:
    record = rec(versions=["1.2.3"])
    assert hits(record, "1.2.3") and not hits(record, "1.2.4")


def test_withdrawn_record_matches_nothing_but_counts() -> None:
    database = db_mod.Database(path=DATA)
    database.add(rec([{"introduced": "0"}], withdrawn="2026-02-01T00:00:00Z"))
    assert database.withdrawn == 1 and not match.find([pypi("demo", "1.0")], database)


def test_unorderable_range_is_skipped_not_guessed() -> None:
    assert not hits(rec([{"introduced": "0"}, {"fixed": "not a version!"}]), "1.0")
    assert not hits(rec([{"introduced": "0"}], kind="GIT"), "1.0")  # commits, not versions


def test_ubuntu_lts_ecosystem_and_pro_records() -> None:
    assert hits(rec([{"introduced": "0"}, {"fixed": "1.2-1ubuntu1"}], eco="Ubuntu:22.04:LTS"), "1.2-1", eco="Ubuntu:22.04")
    assert not hits(rec([{"introduced": "0"}], eco="Ubuntu:Pro:22.04:LTS"), "1.2-1", eco="Ubuntu:22.04")


@pytest.mark.parametrize("entry, expected", [
    ({"severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]},
     ("CRITICAL", 9.3)),
    ({"database_specific": {"severity": "MODERATE"}}, ("MEDIUM", None)),
    ({"severity": [{"type": "Ubuntu", "score": "low"}]}, ("LOW", None)),
    ({"severity": [{"type": "CVSS_V3", "score": "not a vector"}]}, ("UNKNOWN", None)),
    ({}, ("UNKNOWN", None)),
])
def test_severity_sources(entry: dict, expected: tuple) -> None:
    level, score, _ = severity.of_record({"id": "X", **entry})
    assert (level, score) == expected


# ---------------------------------------------------------------- inventory

STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u14

Package: libfoo1
Status: install ok installed
Architecture: amd64
Source: foo (1.0-1)
Version: 1.0-1+b1

Package: apt
Status: install ok installed
Architecture: amd64
Version: 2.6.1

Package: removed
Status: deinstall ok config-files
Version: 1
"""


def test_dpkg_status_keeps_source_packages() -> None:
    pkgs = {p.name: p for p in parse_dpkg_status(STATUS)}
    assert set(pkgs) == {"libc6", "libfoo1", "apt"}
    assert (pkgs["libc6"].source, pkgs["libc6"].source_version) == ("glibc", "2.36-9+deb12u14")
    assert (pkgs["libfoo1"].source, pkgs["libfoo1"].source_version) == ("foo", "1.0-1")  # binNMU
    inv = Inventory(os_ecosystem="Debian:12", os_pretty="Debian 12", deb=parse_dpkg_status(STATUS))
    names = {p.name: p for p in inv.packages()}
    assert names["glibc"].installed == ("libc6",) and names["glibc"].ecosystem == "Debian:12"


@pytest.mark.parametrize("text, eco", [
    ('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', "Debian:12"),
    ('ID=debian\nVERSION_ID="13"', "Debian:13"),
    ('ID=ubuntu\nVERSION_ID="22.04"', "Ubuntu:22.04"),
    ('ID=alpine\nVERSION_ID=3.20.0', None),
])
def test_os_release_to_ecosystem(text: str, eco: str | None) -> None:
    assert parse_os_release(text)[0] == eco


def test_lock_disagreement_and_extras() -> None:
    lock = Lock(fingerprint=None, packages=[Pinned("torch", "2.6.0", []), Pinned("numpy", "2.2.6", []),
                                            Pinned("Pillow", "11.0.0", [])])
    bad, extras = against_lock({"torch": "2.6.0", "numpy": "2.2.5", "pip": "24.0"}, lock)
    assert {(d.name, d.locked, d.installed) for d in bad} == {("numpy", "2.2.6", "2.2.5"), ("Pillow", "11.0.0", None)}
    assert extras == ["pip"]


# ---------------------------------------------------------------- loading errors

def test_no_database_is_missing_not_zero(monkeypatch) -> None:
    monkeypatch.delenv(db_mod.ENV_VAR, raising=False)
    with pytest.raises(Missing) as exc:
        db_mod.load(None)
    assert exc.value.exit_code == ExitCode.MISSING and "not '0 vulnerabilities'" in exc.value.message


def test_env_var_names_the_database(monkeypatch) -> None:
    monkeypatch.setenv(db_mod.ENV_VAR, str(DATA))
    assert db_mod.load(None).records == 7


def test_empty_folder_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(Missing, match="holds no OSV records"):
        db_mod.load(tmp_path)
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(FileProblem, match=r"x.json:1: not valid JSON"):
        db_mod.load(tmp_path)
    (tmp_path / "x.json").unlink()
    (tmp_path / "all.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(FileProblem, match="not a readable zip"):
        db_mod.load(tmp_path)


def test_package_key_normalises_pypi_names_only() -> None:
    assert osv.package_key("PyPI", "Opencv_Python.Headless") == ("PyPI", "opencv-python-headless")
    assert osv.package_key("Ubuntu:22.04:LTS", "libc6") == ("Ubuntu:22.04", "libc6")


@pytest.mark.parametrize("events, version, expected", [
    ([{"introduced": "0"}, {"last_affected": "2.6.0"}], "2.6.0+cu118", True),  # the PyTorch index's wheel name
    ([{"introduced": "0"}, {"last_affected": "2.6.0"}], "2.6.1+cu118", False),
    ([{"introduced": "0"}, {"fixed": "2.6.0"}], "2.6.0+cu118", False),
    ([{"introduced": "0"}, {"fixed": "2.6.0+cu118"}], "2.6.0", False),  # an event's local part is dropped too
    ([{"introduced": "2.6.0+cu124"}, {"fixed": "2.7.0"}], "2.6.0", True),
])
def test_pypi_ranges_compare_public_versions(events: list, version: str, expected: bool) -> None:
    assert hits(rec(events), version) is expected
