"""Scans and VEX in the evidence, without a registry: the OpenVEX document push attaches,
the view `trust` shows of a scan, the policy's scan requirement (file, flags, decisions),
and which roles may attest a scan."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from dlbase.cli.commands import _trustview
from dlbase.core.errors import ExitCode, InvalidInput, MatrixError
from dlbase.trust import evidence, keys, policyfile, predicates, scans
from dlbase.trust.policy import (PUBLISHER, SCANNER, VERIFIER, ScanRequirement, TrustedKey, TrustPolicy,
                                 scan_unmet)
from dlbase.vuln import attestation, match, vex
from dlbase.vuln import db as db_mod
from dlbase.vuln import report as report_mod
from dlbase.image.inventory import Inventory
from dlbase.core import purls

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "osv"
DOC = REPO / "images" / "vex" / "debian12-apt-CVE-2011-3374.json"
DEFAULT = "torch2.6-cu124-runtime-debian12"
PRODUCTS = {DEFAULT, "torch2.6-cu124-notebook-debian12", "torch2.6-cu118-runtime-ubuntu22.04", "dlbase/pytorch"}
SUBJECT = "127.0.0.1:5000/dlbase/pytorch@sha256:" + "ab" * 32
SCANNED = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def trusted(role: str, label: str) -> TrustedKey:
    public = keys.generate().public
    return TrustedKey(public=public, fingerprint=keys.fingerprint(public), roles=((role, label),), source="test")


PUB, GPU, RESCAN = trusted(PUBLISHER, "release"), trusted(VERIFIER, "h200"), trusted(SCANNER, "nightly")


def scan_report(scanned_at: dt.datetime = SCANNED) -> report_mod.ScanReport:
    """torch 2.6.0 (two HIGH advisories in the fixture database) and bookworm's apt 2.6.1
    (CVE-2011-3374, which the repository's VEX answers) in the default variant."""
    inventory = Inventory(os_ecosystem="Debian:12", os_pretty="Debian GNU/Linux 12 (bookworm)",
                          python={"torch": "2.6.0"}, deb={}, distro="debian-12", vendor="debian")
    from dlbase.image.inventory import parse_dpkg_status

    inventory.deb = parse_dpkg_status("Package: apt\nStatus: install ok installed\nVersion: 2.6.1\n"
                                      "Architecture: amd64\n\n")
    report = report_mod.build("test", inventory, db_mod.load(DATA), statements=vex.load_document(DOC, products=PRODUCTS),
                              target=vex.Target(variant=DEFAULT, repository="dlbase/pytorch"))
    report.scanned_at = scanned_at
    return report


# ------------------------------------------------------------------------- the VEX attestation


IMAGE_PURL = purls.oci("127.0.0.1:5000/dlbase/pytorch", "sha256:" + "ab" * 32)
SBOM_PURLS = ["pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12",
              "pkg:deb/debian/libapt-pkg6.0@2.6.1?arch=amd64&distro=debian-12", "pkg:pypi/torch@2.6.0"]


def test_the_vex_document_names_the_pushed_digest_and_the_sboms_packages_by_purl():
    statements = vex.load_document(DOC, products=PRODUCTS)
    target = vex.Target(variant=DEFAULT, repository="dlbase/pytorch", digests=("sha256:" + "ab" * 32,))
    document = attestation.vex_document(statements, target, IMAGE_PURL, SBOM_PURLS)
    assert attestation.OPENVEX_TYPE == document["@context"] == "https://openvex.dev/ns/v0.2.0"
    [again] = vex.parse_document(json.loads(json.dumps(document)), "attached")  # valid OpenVEX 0.2.0 itself
    assert again.status == "not_affected" and again.justification == "vulnerable_code_not_in_execute_path"
    # one product: the image's pkg:oci purl (the notebook variant's product is not about this image)
    assert document["statements"][0]["products"] == [
        {"@id": "pkg:oci/pytorch@sha256%3A" + "ab" * 32 + "?repository_url=127.0.0.1:5000/dlbase/pytorch",
         "subcomponents": [{"@id": "pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12"}]}]
    assert document["author"] == "dlbase maintainers" and document["timestamp"] == "2026-12-01T23:00:00Z"
    assert attestation.vex_document(statements, target, IMAGE_PURL, SBOM_PURLS) == document  # no clock
    other = vex.Target(variant="torch2.6-cu118-runtime-ubuntu22.04", repository="dlbase/pytorch")
    assert attestation.vex_document(statements, other, IMAGE_PURL, SBOM_PURLS) is None


def test_the_vex_rewrite_keeps_what_the_sbom_does_not_list_and_whole_image_products():
    d = json.loads(DOC.read_text())
    d["statements"][0]["products"] = [{"@id": DEFAULT, "subcomponents": [{"@id": "pkg:deb/debian/glibc"}]}]
    [statement] = vex.parse_document(d, "mem", products=PRODUCTS)
    target = vex.Target(variant=DEFAULT, repository="dlbase/pytorch")
    products = attestation.vex_document([statement], target, IMAGE_PURL, SBOM_PURLS)["statements"][0]["products"]
    assert products == [{"@id": IMAGE_PURL, "subcomponents": [{"@id": "pkg:deb/debian/glibc"}]}]  # a source name
    d["statements"][0]["products"] = [{"@id": DEFAULT}, {"@id": "dlbase/pytorch",
                                                        "subcomponents": [{"@id": "pkg:pypi/torch"}]}]
    [statement] = vex.parse_document(d, "mem", products=PRODUCTS)
    products = attestation.vex_document([statement], target, IMAGE_PURL, SBOM_PURLS)["statements"][0]["products"]
    assert products == [{"@id": IMAGE_PURL}]  # one product names the whole image: no narrowing to torch


def test_the_rewritten_document_applies_to_the_scan_of_the_pushed_image():
    """The purl form push writes answers the same finding the readable source does."""
    statements = vex.load_document(DOC, products=PRODUCTS)
    pushed = vex.Target(variant=None, repository=None, purls=(IMAGE_PURL,))
    document = attestation.vex_document(statements, vex.Target(variant=DEFAULT, repository="dlbase/pytorch"),
                                        IMAGE_PURL, SBOM_PURLS)
    again = vex.parse_document(json.loads(json.dumps(document)), "attached", products=PRODUCTS)
    report = scan_report()
    result = vex.apply(report.result.open + [a.finding for a in report.result.vex], again, pushed)
    assert [a.finding.id for a in result.vex] == ["DEBIAN-CVE-2011-3374"]
    elsewhere = vex.Target(variant=None, repository=None,
                           purls=(purls.oci("127.0.0.1:5000/dlbase/pytorch", "sha256:" + "cd" * 32),))
    assert not vex.apply(result.open + [a.finding for a in result.vex], again, elsewhere).vex  # another digest


# ------------------------------------------------------------------------- the scan view


def test_the_view_of_a_dlbase_scan():
    predicate = attestation.vuln_predicate(scan_report(), finished=SCANNED)
    view = scans.view(json.loads(json.dumps(predicate)))
    assert view["when"] == SCANNED.isoformat(timespec="seconds")
    assert view["database"].startswith("2026-11-20") and view["scanner"].startswith("pkg:pypi/dlbase@")
    assert view["counts"]["HIGH"] == 2 and view["vex_applied"] == 1
    assert view["counts_without_vex"]["UNKNOWN"] == view["counts"]["UNKNOWN"] + 1
    assert {f["id"] for f in view["findings"]} == {"PYSEC-2025-208", "PYSEC-2026-2286"}
    foreign = scans.view({"scanner": {"uri": "pkg:github/aquasecurity/trivy", "db": {"version": "2"},
                                      "result": {"Results": []}}, "metadata": {"scanFinishedOn": "2026-12-01T00:00:00Z"}})
    assert foreign["counts"] is None and foreign["vex_applied"] is None
    rows = [{"predicate": scans.view(attestation.vuln_predicate(scan_report(), finished=SCANNED - dt.timedelta(days=d)))}
            for d in (9, 1, 30)]
    assert scans.newest(rows) is rows[1] and scans.newest([]) is None


def test_trust_table_shows_the_newest_scan_and_the_vex(cli, capsys):
    body = {"signature": {"identity": "r/p", "tag": None, "key": PUB.fingerprint, "key_label": "release"},
            "built_from": None, "sbom": None, "verifications": [], "other_attestations": [], "ignored": [],
            "scan": {"when": "2026-12-01T12:00:00+00:00", "database": "2026-11-20T00:00:00+00:00",
                     "counts": {"CRITICAL": 0, "HIGH": 2, "LOW": 1}, "vex_applied": 1, "unmet": [], "scans": 2,
                     "signer": {"roles": [SCANNER], "label": "nightly", "fingerprint": RESCAN.fingerprint}},
            "vex": {"statements": 1, "timestamp": "2026-12-01T23:00:00Z",
                    "signer": {"roles": [PUBLISHER], "label": "release", "fingerprint": PUB.fingerprint}},
            "policy": {"rules": "x"}, "pinned": SUBJECT}
    from dlbase.cli import ui

    capsys.readouterr()
    ui.out._width = 250
    _trustview.print_table(body)
    out = capsys.readouterr().out
    assert "scan (newest of 2)" in out and "open: 2 high, 1 low; 1 answered by VEX; by scanner nightly" in out
    assert "database 2026-11-20" in out and "1 statement(s), 2026-12-01T23:00:00Z (by publisher release" in out
    _trustview.print_table({**body, "scan": None, "vex": None})
    assert "no scan attestation by a publisher or scanner key" in capsys.readouterr().out


# ------------------------------------------------------------------------- the policy


def test_scan_requirement_age_and_severity():
    view = scans.view(attestation.vuln_predicate(scan_report(), finished=SCANNED))
    later = SCANNED + dt.timedelta(days=8)
    assert scan_unmet(TrustPolicy(keys=(PUB,)), None) == []  # no requirement: nothing to meet
    assert scan_unmet(TrustPolicy(keys=(PUB,), scan=ScanRequirement(max_age=dt.timedelta(days=7))), None) == \
        ["no scan attestation by a publisher or scanner key of the policy"]
    week = TrustPolicy(keys=(PUB,), scan=ScanRequirement(max_age=dt.timedelta(days=7)))
    assert scan_unmet(week, view, now=SCANNED + dt.timedelta(days=6)) == []
    [why] = scan_unmet(week, view, now=later)
    assert "is older than 7d" in why
    [why] = scan_unmet(TrustPolicy(keys=(PUB,), scan=ScanRequirement(fail_on="HIGH")), view, now=later)
    assert "2 finding(s) VEX does not answer at or above HIGH" in why and "PYSEC-2026-2286" in why
    assert scan_unmet(TrustPolicy(keys=(PUB,), scan=ScanRequirement(fail_on="CRITICAL")), view) == []
    # the apt finding is UNKNOWN and answered by VEX: at UNKNOWN only the open ones count
    [why] = scan_unmet(TrustPolicy(keys=(PUB,), scan=ScanRequirement(fail_on="UNKNOWN")), view)
    assert f"{sum(view['counts'].values())} finding(s)" in why and "DEBIAN-CVE-2011-3374" not in why
    foreign = {"when": SCANNED.isoformat(), "counts": None}
    [why] = scan_unmet(TrustPolicy(keys=(PUB,), scan=ScanRequirement(fail_on="HIGH")), foreign)
    assert "not a dlbase scan" in why


def test_flags_add_scan_requirements_and_never_relax_them():
    base = TrustPolicy(keys=(PUB,), scan=ScanRequirement(max_age=dt.timedelta(days=7), fail_on="HIGH"))
    flags = dict(require_gpu_verified=False, gpu_arch=None, min_driver=None)
    assert base.with_flags(**flags, max_scan_age="30d", scan_fail_on="critical").scan == base.scan
    assert base.with_flags(**flags, max_scan_age="2d", scan_fail_on="low").scan == \
        ScanRequirement(max_age=dt.timedelta(days=2), fail_on="LOW")
    assert TrustPolicy(keys=(PUB,)).with_flags(**flags, max_scan_age="12h").scan == \
        ScanRequirement(max_age=dt.timedelta(hours=12))
    assert "a scan by a publisher or scanner key at most 7d old with no finding VEX does not answer at or above HIGH" \
        in base.describe()
    with pytest.raises(InvalidInput, match="--max-scan-age 'a week' is not like 12h"):
        base.with_flags(**flags, max_scan_age="a week")
    with pytest.raises(InvalidInput, match="--scan-fail-on 'SEVERE' is not a severity"):
        base.with_flags(**flags, scan_fail_on="severe")


@pytest.fixture(scope="module")
def pubs(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("pubs")
    for name in ("release", "rescan"):
        (base / f"{name}.pub").write_bytes(keys.public_pem(keys.generate()))
    return base


def test_a_policy_file_with_scanners_and_a_scan_requirement(pubs):
    path = pubs / "policy.yaml"
    path.write_text("publishers:\n  - key: release.pub\nscanners:\n  - label: nightly\n    key: rescan.pub\n"
                    "require:\n  scan:\n    max_age: 7d\n    fail_on: high\n")
    pol = policyfile.load(path)
    assert pol.scan == ScanRequirement(max_age=dt.timedelta(days=7), fail_on="HIGH")
    [scanner] = pol.of_role(SCANNER)
    assert scanner.label_for(SCANNER) == "nightly" and not scanner.has(VERIFIER) and not scanner.has(PUBLISHER)
    cli_pol = policyfile.from_cli(None, (str(pubs / "release.pub"),), (), require_gpu_verified=False, gpu_arch=None,
                                  min_driver=None, scanner_specs=(f"nightly={pubs / 'rescan.pub'}",),
                                  max_scan_age="1d")
    assert [k.label_for(SCANNER) for k in cli_pol.of_role(SCANNER)] == ["nightly"]
    assert cli_pol.scan == ScanRequirement(max_age=dt.timedelta(days=1))
    with pytest.raises(InvalidInput, match="--scanner 'rescan.pub' is not LABEL=PUB"):
        policyfile.from_cli(None, (str(pubs / "release.pub"),), (), require_gpu_verified=False, gpu_arch=None,
                            min_driver=None, scanner_specs=("rescan.pub",))


HEAD = "publishers:\n  - key: release.pub\n"
BAD = [
    (HEAD + "scanners:\n  - key: rescan.pub\n", 4, "a scanner needs a label"),
    (HEAD + "require:\n  scan:\n    fail_on: SEVERE\n", 5, "fail_on 'SEVERE' is not a severity"),
    (HEAD + "require:\n  scan:\n    max_age: 7\n", 5, "max_age '7' is not like 12h"),
    (HEAD + "require:\n  scan:\n    max_days: 7\n", 5, "unknown key 'max_days' in require.scan"),
    (HEAD + "require:\n  scan: {}\n", 4, "require.scan needs max_age and/or fail_on"),
    (HEAD + "require:\n  scan: 7d\n", 4, "require.scan must be a mapping"),
    (HEAD + "scanner:\n  - label: n\n    key: rescan.pub\n", 3, "unknown key 'scanner'"),
]


@pytest.mark.parametrize("text,line,needle", BAD, ids=[b[2] for b in BAD])
def test_a_bad_scan_section_names_file_and_line(pubs, text, line, needle):
    path = pubs / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MatrixError) as info:
        policyfile.load(path)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert needle in info.value.message and info.value.message.startswith(f"{path}:{line}"), info.value.message


# ------------------------------------------------------------------------- roles


def test_which_roles_may_attest_a_scan_or_vex():
    both = TrustedKey(public=GPU.public, fingerprint=GPU.fingerprint, roles=((VERIFIER, "h"), (SCANNER, "s")),
                      source="test")
    assert evidence.may_attest(PUB, attestation.VULN_TYPE) and evidence.may_attest(PUB, attestation.OPENVEX_TYPE)
    assert evidence.may_attest(RESCAN, attestation.VULN_TYPE)
    assert not evidence.may_attest(RESCAN, attestation.OPENVEX_TYPE)  # VEX is the team's word: publishers only
    assert not evidence.may_attest(RESCAN, predicates.VERIFICATION_TYPE)
    assert not evidence.may_attest(GPU, attestation.VULN_TYPE)  # a GPU host's key vouches for GPU runs only
    assert evidence.may_attest(both, attestation.VULN_TYPE) and evidence.may_attest(both, predicates.VERIFICATION_TYPE)
    assert attestation.VULN_TYPE in predicates.KNOWN_TYPES and attestation.OPENVEX_TYPE in predicates.KNOWN_TYPES


# ------------------------------------------------------------------------- the verbs' bad input


def test_push_scan_db_without_sign_and_scan_attest_without_digest_or_key(cli, tmp_path):
    res = cli("push", DEFAULT, "--registry", "127.0.0.1:5000", "--scan-db", str(DATA))
    assert res.code == 2 and "--scan-db goes with --sign" in res.err
    res = cli("scan", DEFAULT, "--attest", "--key", "cosign.key", "--db", str(DATA), "--json")
    assert res.code == 2 and "REGISTRY/REPO@sha256" in res.json()["message"]
    res = cli("scan", SUBJECT, "--attest", "--db", str(DATA), "--json")
    assert res.code == 2 and "--attest needs --key" in res.json()["message"]
    assert cli("scan", DEFAULT, "--key", "cosign.key", "--db", str(DATA)).code == 2
    assert cli("scan", SUBJECT, "--attest", "--from-lock", "--key", "k", "--db", str(DATA)).code == 2
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(keys.public_pem(keys.generate()))
    res = cli("trust", SUBJECT, "--key", str(pub), "--max-scan-age", "soon", "--json")  # before a registry is asked
    assert res.code == 2 and "--max-scan-age 'soon' is not like 12h" in res.json()["message"]


def test_key_generate_makes_a_scanner_key_with_its_policy_entry(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBASE_SIGNING_PASSWORD", "scan job")
    res = cli("key", "generate", "--role", "scanner", "--out", str(tmp_path / "a"), "--json")
    assert res.code == 2 and "--role scanner needs --label" in res.json()["message"]
    res = cli("key", "generate", "--role", "scanner", "--label", "nightly", "--out", str(tmp_path / "b"), "--json")
    assert res.code == 0, res.err
    entry = res.json()["policy_entry"]
    assert entry.startswith("scanners:\n  - label: nightly\n")


def test_a_scan_that_could_not_evaluate_a_record_does_not_meet_fail_on():
    """A signed scan with 'could not evaluate' rows is never "no finding at or above": the
    consumer's fail_on fails even at CRITICAL, where the findings alone would pass."""
    report = scan_report()
    report.unevaluated = [match.Unevaluated(id="BANANA-1", package="torch", ecosystem="PyPI",
                                            installed_version="2.6.0", reason="range event introduced: 'banana'")]
    view = scans.view(attestation.vuln_predicate(report, finished=SCANNED))
    assert view["could_not_evaluate"] == 1
    [why] = scan_unmet(TrustPolicy(keys=(PUB,), scan=ScanRequirement(fail_on="CRITICAL")), view)
    assert "could not evaluate 1 advisory record(s)" in why
