"""VEX statements applied to findings, validated like the spec asks; the database
download against a real HTTP server on 127.0.0.1; the scan verb's exit codes and JSON."""

from __future__ import annotations

import copy
import http.server
import json
import threading
import zipfile
from pathlib import Path

import pytest

from dlbase.core.errors import AddressError, InvalidInput, Unreachable
from dlbase.vuln import db as db_mod
from dlbase.vuln import match, update, vex
from dlbase.image.inventory import Inventory, parse_dpkg_status

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "osv"
DOC = REPO / "images" / "vex" / "debian12-apt-CVE-2011-3374.json"
DEFAULT = "torch2.6-cu124-runtime-debian12"
PRODUCTS = {DEFAULT, "torch2.6-cu124-notebook-debian12", "torch2.6-cu118-runtime-ubuntu22.04", "dlbase/pytorch"}


DPKG = ("Package: apt\nStatus: install ok installed\nVersion: 2.6.1\nArchitecture: amd64\n\n"
        "Package: libapt-pkg6.0\nStatus: install ok installed\nSource: apt\nVersion: 2.6.1\nArchitecture: amd64\n")


def findings() -> list[match.Finding]:
    """torch 2.6.0 and bookworm's apt 2.6.1 (two binaries of source apt), through the
    inventory a scan reads, so each package carries the SBOM's purls."""
    database = db_mod.load(DATA)
    inventory = Inventory(os_ecosystem="Debian:12", os_pretty=None, python={"torch": "2.6.0"},
                          deb=parse_dpkg_status(DPKG), distro="debian-12", vendor="debian")
    return match.find(inventory.packages(), database)


def doc() -> dict:
    return json.loads(DOC.read_text())


def test_the_repository_statement_moves_the_apt_finding_with_its_reasoning() -> None:
    statements = vex.load_document(DOC, products=PRODUCTS)
    result = vex.apply(findings(), statements, vex.Target(variant=DEFAULT, repository="dlbase/pytorch"))
    assert [a.finding.id for a in result.vex] == ["DEBIAN-CVE-2011-3374"]
    applied = result.vex[0].statement
    assert applied.status == "not_affected" and applied.justification == "vulnerable_code_not_in_execute_path"
    assert "net_update" in applied.impact_statement
    assert {f.id for f in result.open} == {"PYSEC-2025-208", "PYSEC-2026-2286"}


def test_statement_for_another_variant_or_package_does_not_apply() -> None:
    statements = vex.load_document(DOC, products=PRODUCTS)
    other = vex.apply(findings(), statements, vex.Target(variant="torch2.6-cu118-runtime-ubuntu22.04",
                                                         repository="dlbase/pytorch"))
    assert not other.vex
    d = doc()
    d["statements"][0]["products"] = [{"@id": DEFAULT, "subcomponents": [{"@id": "pkg:pypi/torch"}]}]
    wrong_pkg = vex.parse_document(d, "mem", products=PRODUCTS)
    assert not vex.apply(findings(), wrong_pkg, vex.Target(variant=DEFAULT, repository=None)).vex


def test_repository_digest_and_newest_statement() -> None:
    digest = "sha256:" + "ab" * 32
    d = doc()
    d["statements"][0]["products"] = [{"@id": f"dlbase/pytorch@{digest}"}]
    later = copy.deepcopy(d["statements"][0])
    later.update({"status": "under_investigation", "timestamp": "2027-01-01T00:00:00Z"})
    del later["justification"]
    d["statements"].append(later)
    statements = vex.parse_document(d, "mem", products=PRODUCTS)
    result = vex.apply(findings(), statements, vex.Target(variant=None, repository=None, digests=(digest,)))
    # the newest statement decides: it asks the question again, so the finding is open again
    assert not result.vex and [a.statement.status for a in result.annotated] == ["under_investigation"]
    assert "DEBIAN-CVE-2011-3374" in {f.id for f in result.open}


@pytest.mark.parametrize("status, answered", [("not_affected", True), ("fixed", True),
                                              ("under_investigation", False), ("affected", False)])
def test_only_not_affected_and_fixed_answer_a_finding(status: str, answered: bool) -> None:
    d = doc()
    d["statements"][0]["status"] = status
    if status != "not_affected":
        del d["statements"][0]["justification"]
    if status == "affected":
        d["statements"][0]["action_statement"] = "upgrade apt"
    result = vex.apply(findings(), vex.parse_document(d, "mem", products=PRODUCTS),
                       vex.Target(variant=DEFAULT, repository=None))
    apt = next(f for f in findings() if f.id == "DEBIAN-CVE-2011-3374")
    assert (apt.id in {f.id for f in result.open}) is not answered
    assert bool(result.vex) is answered and bool(result.annotated) is not answered
    if not answered:
        assert result.statement_for(next(f for f in result.open if f.id == apt.id)).status == status


def test_affected_statement_keeps_the_finding_open() -> None:
    d = doc()
    d["statements"][0].update({"status": "affected", "action_statement": "upgrade apt"})
    del d["statements"][0]["justification"]
    result = vex.apply(findings(), vex.parse_document(d, "mem", products=PRODUCTS),
                       vex.Target(variant=DEFAULT, repository=None))
    assert not result.vex and [a.finding.id for a in result.annotated] == ["DEBIAN-CVE-2011-3374"]
    assert "DEBIAN-CVE-2011-3374" in {f.id for f in result.open}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["statements"][0].pop("justification"), "needs a 'justification'"),
    (lambda d: d["statements"][0].update(justification="we think so"), "needs a 'justification'"),
    (lambda d: d.update({"@context": "https://openvex.dev/ns/v0.1.0"}), "'@context' must be"),
    (lambda d: d.pop("author"), "'author' is required"),
    (lambda d: d.update(version="1"), "'version' is required"),
    (lambda d: d["statements"][0].update(status="maybe"), "'status' must be one of"),
    (lambda d: d["statements"][0]["products"][0].update({"@id": "torch2.6-cu124-runtime-debain12"}),
     "is no variant, repository"),
    (lambda d: d["statements"][0]["products"][0]["subcomponents"][0].update({"@id": "apt"}), "needs an '@id' purl"),
    (lambda d: d["statements"][0].update(status="affected"), "'justification' belongs to status not_affected"),
])
def test_invalid_documents_are_refused(change, message: str) -> None:
    d = doc()
    change(d)
    with pytest.raises(InvalidInput, match=message):
        vex.parse_document(d, "doc.json", products=PRODUCTS)


def test_check_validates_the_vex_folder(project_copy: Path, cli) -> None:
    assert cli("check").code == 0
    bad = doc()
    bad["statements"][0]["products"][0]["@id"] = "no-such-variant"
    (project_copy / "images" / "vex" / "bad.json").write_text(json.dumps(bad))
    res = cli("check", "--json")
    assert res.code == 2 and "no-such-variant" in res.json()["message"]


# ---------------------------------------------------------------- update (a real server on loopback)

@pytest.fixture
def osv_server(tmp_path: Path):
    """Serves tmp/site/<ecosystem>/all.zip over HTTP on 127.0.0.1 (what OSV's bucket holds)."""
    site = tmp_path / "site"
    pypi_dir = site / "PyPI"
    pypi_dir.mkdir(parents=True)
    with zipfile.ZipFile(pypi_dir / "all.zip", "w") as zf:
        for path in sorted((DATA / "pypi").glob("*.json")):
            zf.write(path, path.name)
    deb_dir = site / "Debian:12"
    deb_dir.mkdir()
    with zipfile.ZipFile(deb_dir / "all.zip", "w") as zf:
        for path in sorted((DATA / "debian").glob("*.json")):
            zf.write(path, path.name)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(site), **kw)

        def log_message(self, *a):  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_update_downloads_each_ecosystem_and_the_scan_reads_it(osv_server: str, tmp_path: Path) -> None:
    folder = tmp_path / "db"
    got = update.download(folder, ["PyPI", "Debian:12"], base_url=osv_server)
    assert [(g.ecosystem, g.records) for g in got] == [("PyPI", 5), ("Debian:12", 2)]
    assert (folder / "Debian:12" / "all.zip").is_file()
    assert db_mod.load(folder).records == 7


def test_failed_update_leaves_the_old_database_and_no_partial_file(osv_server: str, tmp_path: Path) -> None:
    folder = tmp_path / "db"
    update.download(folder, ["PyPI"], base_url=osv_server)
    before = (folder / "PyPI" / "all.zip").read_bytes()
    with pytest.raises(Unreachable, match="HTTP 404"):
        update.download(folder, ["PyPI", "Debian:99"], base_url=osv_server)
    assert (folder / "PyPI" / "all.zip").read_bytes() == before
    assert not [p for p in folder.rglob("*") if p.name.endswith(".part")]


@pytest.mark.parametrize("url", ["http://osv.example.org", "ftp://127.0.0.1/x", "file:///tmp", "127.0.0.1:8000"])
def test_plain_http_is_refused_off_loopback(url: str) -> None:
    with pytest.raises(AddressError):
        update.check_base_url(url)


def test_scan_update_verb(osv_server: str, tmp_path: Path, cli) -> None:
    res = cli("scan", "--update", "--db", str(tmp_path / "db"), "--ecosystem", "PyPI", "--base-url", osv_server,
              "--json")
    assert res.code == 0 and res.json()["updated"][0]["records"] == 5
    res = cli("scan", "--update", "--db", str(tmp_path / "db"), "--base-url", "http://osv.example.org", "--json")
    assert res.code == 2 and "https" in res.json()["message"]


# ---------------------------------------------------------------- the verb, lock only (no daemon)

def test_scan_from_lock_of_the_default_variant(cli) -> None:
    res = cli("scan", "--from-lock", "--db", str(DATA), "--json")
    body = res.json()
    assert res.code == 0 and body["ok"] is True
    assert {f["id"] for f in body["findings"]} == {"PYSEC-2025-208", "PYSEC-2026-2286"}
    assert body["counts"]["HIGH"] == 2 and body["database"]["newest_modified"].startswith("2026-11-20")
    table = cli("scan", "--from-lock", "--db", str(DATA), "--max-db-age", "100000")
    assert "PYSEC-2026-2286 (CVE-2026-24747, GHSA-63cw-57p8-fm3p)" in table.out
    assert "open findings by severity: 2 high" in table.out and "older than" not in table.err


def test_scan_fail_on_and_stale_warning(cli) -> None:
    res = cli("scan", "--from-lock", "--db", str(DATA), "--fail-on", "high", "--max-db-age", "1")
    assert res.code == 1 and "2 finding(s) at or above HIGH" in res.err and "older than 1 days" in res.err
    assert cli("scan", "--from-lock", "--db", str(DATA), "--fail-on", "critical").code == 0
    res = cli("scan", "--from-lock", "--db", str(DATA), "--fail-on", "high", "--json")
    body = res.json()  # one document, with the findings and the error
    assert res.code == 1 and body["exit_code"] == 1 and len(body["findings"]) == 2


def _torch_vex(folder: Path, status: str) -> Path:
    """A VEX folder whose one statement speaks for both torch advisories of the default variant."""
    d = doc()
    d["statements"][0].update({"vulnerability": {"name": "PYSEC-2025-208", "aliases": ["PYSEC-2026-2286"]},
                               "products": [{"@id": DEFAULT, "subcomponents": [{"@id": "pkg:pypi/torch"}]}],
                               "status": status})
    if status != "not_affected":
        del d["statements"][0]["justification"]
    folder.mkdir()
    (folder / "torch.json").write_text(json.dumps(d))
    return folder


def test_under_investigation_does_not_silence_fail_on(cli, tmp_path: Path) -> None:
    folder = _torch_vex(tmp_path / "vex", "under_investigation")
    res = cli("scan", "--from-lock", "--db", str(DATA), "--vex", str(folder), "--fail-on", "high", "--json")
    body = res.json()
    assert res.code == 1 and body["counts"]["HIGH"] == 2 and not body["vex"]
    assert {f["vex"]["status"] for f in body["findings"]} == {"under_investigation"}
    table = cli("scan", "--from-lock", "--db", str(DATA), "--vex", str(folder), "--max-db-age", "100000")
    assert "under_investigation" in table.out and "open findings by severity: 2 high" in table.out
    answered = _torch_vex(tmp_path / "vex2", "not_affected")
    res = cli("scan", "--from-lock", "--db", str(DATA), "--vex", str(answered), "--fail-on", "high", "--json")
    assert res.code == 0 and len(res.json()["vex"]) == 2 and not res.json()["findings"]


def test_scan_without_database_is_exit_14(cli, monkeypatch) -> None:
    monkeypatch.delenv(db_mod.ENV_VAR, raising=False)
    res = cli("scan", "--from-lock", "--json")
    assert res.code == 14 and "--db" in res.json()["hint"]
    assert cli("scan", "--from-lock", "--db", "/nonexistent/osv").code == 14
    assert cli("scan", "--from-lock", "--db", str(DATA), "--vex", "/nonexistent/vex").code == 14


def test_scan_writes_cosigns_vuln_predicate(cli, tmp_path: Path) -> None:
    from dlbase.vuln.attestation import VULN_TYPE

    out = tmp_path / "vuln.json"
    res = cli("scan", "--from-lock", "--db", str(DATA), "--predicate", str(out), "--json")
    assert res.code == 0 and res.json()["predicate_file"] == str(out)
    predicate = json.loads(out.read_text())
    assert set(predicate) == {"invocation", "scanner", "metadata"}  # cosign's vuln/v1 fields
    assert predicate["scanner"]["db"]["version"].startswith("2026-11-20")
    assert {f["id"] for f in predicate["scanner"]["result"]["findings"]} == {"PYSEC-2025-208", "PYSEC-2026-2286"}
    assert predicate["metadata"]["scanStartedOn"] <= predicate["metadata"]["scanFinishedOn"]
    assert VULN_TYPE == "https://cosign.sigstore.dev/attestation/vuln/v1"


def test_the_newest_scan_is_what_report_shows(project_copy: Path) -> None:
    from dlbase.cli.commands.report import _scan_line
    from dlbase.define.project import Project
    from dlbase.examine import report as image_reports

    project = Project.discover(project_copy)
    image_id = "sha256:" + "cd" * 32
    assert image_reports.last_scan(project, image_id) is None
    assert "never scanned" in _scan_line(None)
    body = {"scanned_at": "2026-12-01T00:00:00+00:00", "database": {"newest_modified": "2026-11-30T00:00:00+00:00"},
            "counts": {"CRITICAL": 0, "HIGH": 2, "LOW": 1}, "counts_without_vex": {"HIGH": 2, "LOW": 1, "UNKNOWN": 1},
            "vex": [{"id": "DEBIAN-CVE-2011-3374"}]}
    image_reports.write_scan(project, image_id, body)
    scan = image_reports.last_scan(project, image_id)
    assert scan["vex_applied"] == 1 and scan["database_newest"].startswith("2026-11-30")
    assert _scan_line(scan).startswith("2 high, 1 low open; 1 answered by VEX")
    assert image_reports.last_scan(project, "sha256:" + "cd" * 6 + "ee" * 26) is None  # same short id, other image
