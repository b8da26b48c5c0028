"""`push --sign`, `trust`, `pull --key` and `verify --attest` end to end: a real small image
built from the project's templates (tests/support/small_project.py), a real daemon, a
real loopback registry, keys made by `dlbase key generate`.

A small image cannot pass the full verify (it has no torch), so for the push gate this
test writes the local verification record itself, marked ``simulated`` (the attached
verification predicate carries that note); `verify --attest` then runs the real verify,
which fails, and its failed result is what gets attested -- the honest outcome.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from dlbase.build import builder as build_mod
from dlbase.core import purls
from dlbase.verify import records
from dlbase.registry.client import RegistryClient
from dlbase.define.spec import BuildSpec
from dlbase.engine import builderchoice
from dlbase.trust import predicates, store
from dlbase.vuln.attestation import OPENVEX_TYPE, VULN_TYPE

from tests.support.cut_proxy import CutProxy
from tests.support.registry import dangling_references, registry_binary, running_registry
from tests.support.small_project import make_small_project

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed")]
REPO = f"dlbase-test-{uuid.uuid4().hex[:8]}/pytorch"
PASSWORD = "trust-push-test"


@pytest.fixture(scope="module")
def image(engine, debian_base, session_labels, tmp_path_factory):
    sp = make_small_project(tmp_path_factory.mktemp("sp"), payload="trust")
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    res = build_mod.build(project, spec, engine, tag=False, check_versions=False, extra_labels=session_labels)
    immutable = res.immutable_tag.split(":", 1)[1]
    engine.tag(res.image_id, REPO, immutable)
    return {"sp": sp, "image_id": res.image_id, "ref": f"{REPO}:{immutable}", "immutable": immutable,
            "builder": res.builder["name"]}


def simulate_passed_verify(image) -> None:
    """The push gate's local record, written by the test (see the module docstring);
    `verify --attest` in a test replaces it with the real, failed, result."""
    records.record(image["sp"].project(), image["image_id"], passed=True, require_gpu=False,
                   summary={"simulated": "test_trust_push: a small image cannot pass the full verify",
                            "counts": {"host": {"passed": 1}, "image": {"passed": 1}}, "failed_checks": [],
                            "partial": False, "gpus": False})


def dlbase(sp, *args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    full = {**os.environ, "DLBASE_ROOT": str(sp.root), "DLBASE_SIGNING_PASSWORD": PASSWORD,
            "DOCKER_CONFIG": str(sp.root / ".no-docker-config")}
    for name in ("DLBASE_REGISTRY_USER", "DLBASE_REGISTRY_PASSWORD", "DLBASE_VULN_DB"):
        full.pop(name, None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=sp.root, env=full, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_push_sign_trust_pull_and_verify_attest(engine, image, tmp_path):
    simulate_passed_verify(image)
    sp = image["sp"]
    keydir = tmp_path / "keys"
    assert dlbase(sp, "key", "generate", "--out", str(keydir)).returncode == 0
    with running_registry(tmp_path) as reg:
        pushed = dlbase(sp, "push", image["ref"], "--registry", reg.host, "--sign", str(keydir / "cosign.key"),
                        "--host-label", "build-host", "--json")
        assert pushed.returncode == 0, pushed.stderr
        body = json.loads(pushed.stdout)
        signing = body["signing"]
        # no database: no scan, and the push says so; the repository's VEX about the variant is attached
        assert [a["predicateType"] for a in signing["attestations"]] == [
            predicates.SBOM_TYPE, predicates.PROVENANCE_TYPE, predicates.VERIFICATION_TYPE, OPENVEX_TYPE]
        assert signing["scan"]["attached"] is False and "no scan was attached" in signing["scan"]["reason"]
        assert signing["scan"]["vex_statements"] == 1
        assert signing["registry_bytes"] > 0 and signing["seconds"] > 0
        assert signing["signature"]["signed_tags"] == list(body["tags"])  # one signature per pushed tag
        print(f"\nSIGNING COST: {signing['seconds']:.2f}s, {signing['registry_bytes']} registry bytes, "
              f"attestations {[a['bytes'] for a in signing['attestations']]}")
        digest = body["tags"][image["immutable"]]["digest"]
        ref = f"{reg.host}/{REPO}:{image['immutable']}"

        res = dlbase(sp, "trust", ref, "--key", str(keydir / "cosign.pub"), "--json")
        assert res.returncode == 0, res.stderr
        trusted = json.loads(res.stdout)
        assert trusted["digest"] == digest
        labels = engine.inspect_image(image["image_id"])["Config"]["Labels"]
        built = trusted["built_from"]
        assert built["commit"] == labels["org.opencontainers.image.revision"]
        assert built["lock_hash"] == labels["dlbase.lock-hash"]
        assert built["base_digest"] == labels["org.opencontainers.image.base.digest"]
        assert trusted["sbom"]["python"] >= 1 and trusted["sbom"]["debian"] > 50  # dpkg read from the image
        [gate] = trusted["verifications"]
        assert gate["result"] == "passed" and gate["host_label"] == "build-host"
        assert gate["simulated"] is True and gate["unmet"] == ["a simulated (test-only) record"]
        assert trusted["signature"]["tag"] == image["immutable"]
        assert trusted["signature"]["key"] == gate["signer"]["fingerprint"] == signing["key"]

        # the SBOM lists the tiny wheel and Debian's python3 package with purls
        client = RegistryClient(reg.host)
        att, _ = client.manifest(REPO, store.att_tag(digest))
        sbom_layer = next(la for la in att["layers"] if la["annotations"]["predicateType"] == predicates.SBOM_TYPE)
        stmt = json.loads(base64.b64decode(json.loads(client.blob(REPO, sbom_layer["digest"]))["payload"]))
        listed = {c["purl"] for c in stmt["predicate"]["components"]}
        assert any(p.startswith("pkg:pypi/dlbase-tiny@1.0") for p in listed)
        assert any(p.startswith("pkg:deb/debian/dpkg@") and p.endswith("&distro=debian-12") for p in listed)
        # the lock is the image's own copy; the small project is no git checkout, so no
        # commit names the Dockerfile built and the provenance lists none
        assert body["signing"]["built_from"] == {"lock": True, "dockerfile": False, "distro": "debian-12"}
        prov_layer = next(la for la in att["layers"]
                          if la["annotations"]["predicateType"] == predicates.PROVENANCE_TYPE)
        prov = json.loads(base64.b64decode(json.loads(client.blob(REPO, prov_layer["digest"]))["payload"]))
        deps = {d["name"]: d for d in prov["predicate"]["buildDefinition"]["resolvedDependencies"]}
        in_image = engine.read_image_file(image["image_id"], "/opt/dlbase/requirements.lock")
        assert deps["requirements.lock"]["digest"]["sha256"] == hashlib.sha256(in_image).hexdigest()
        assert "rendered Dockerfile" not in deps
        # the build type names the builder that ran (BuildKit on this daemon), not a fixed one
        assert prov["predicate"]["buildDefinition"]["buildType"] == builderchoice.BUILD_TYPES[image["builder"]]
        ver_layer = next(la for la in att["layers"]
                         if la["annotations"]["predicateType"] == predicates.VERIFICATION_TYPE)
        ver = json.loads(base64.b64decode(json.loads(client.blob(REPO, ver_layer["digest"]))["payload"]))["predicate"]
        assert ver["result"] == "pass" and "simulated record" in ver["dlbase"]["note"]

        table = dlbase(sp, "trust", ref, "--key", str(keydir / "cosign.pub"))
        assert table.returncode == 0 and "verification: build-host" in table.stdout
        assert "no scan attestation by a publisher or scanner key" in table.stdout
        unscanned = dlbase(sp, "trust", ref, "--key", str(keydir / "cosign.pub"), "--max-scan-age", "7d")
        assert unscanned.returncode == 19 and "no scan attestation" in unscanned.stderr

        pulled = dlbase(sp, "pull", ref, "--key", str(keydir / "cosign.pub"), "--json")
        assert pulled.returncode == 0, pulled.stderr
        assert json.loads(pulled.stdout)["image_id"] == image["image_id"]

        # pushing and signing again adds no duplicate signature, SBOM or provenance
        again = dlbase(sp, "push", image["ref"], "--registry", reg.host, "--sign", str(keydir / "cosign.key"), "--json")
        assert again.returncode == 0, again.stderr
        signing = json.loads(again.stdout)["signing"]
        assert signing["signature"]["existing"] is True
        # a new record attestation; the same VEX document is not attached twice
        assert [a.get("existing", False) for a in signing["attestations"]] == [True, True, False, True]
        shown = dlbase(sp, "push", image["ref"], "--registry", reg.host, "--sign", str(keydir / "cosign.key"), "-q")
        assert shown.returncode == 0, shown.stderr  # and the table says that no scan was attached, never silent
        assert "no scan was attached" in shown.stderr and "VEX attached: 1 statement(s)" in shown.stderr

        image_tags = {t: d for t, d in ((t, client.manifest_digest(REPO, t)) for t in client.tags(REPO))
                      if not t.startswith("sha256-")}
        # The key and its passphrase come as CI secrets (environment); a sitecustomize on
        # PYTHONPATH records what every Python child of verify sees (testinfra's pytest is one).
        probe = tmp_path / "probe"
        probe.mkdir()
        seen = tmp_path / "children.jsonl"
        (probe / "sitecustomize.py").write_text(
            "import json, os, sys\n"
            f"with open({str(seen)!r}, 'a') as fh:\n"
            "    fh.write(json.dumps({'argv': sys.argv, 'secrets': sorted(k for k in os.environ\n"
            "        if k in ('DLBASE_SIGNING_PASSWORD', 'DLBASE_SIGNING_KEY'))}) + '\\n')\n")
        attest = dlbase(sp, "verify", f"{reg.host}/{REPO}@{digest}", "--attest", "--key", "env://DLBASE_SIGNING_KEY",
                        "--host-label", "cpu-ci",
                        env={"DLBASE_SIGNING_KEY": (keydir / "cosign.key").read_text(),
                             "PYTHONPATH": os.pathsep.join([str(probe), os.environ.get("PYTHONPATH", "")])})
        assert attest.returncode == 9, attest.stderr  # the small image fails the real verify
        assert "attested" in attest.stderr
        children = [json.loads(line) for line in seen.read_text().splitlines()]
        parent, *rest = children
        assert parent["secrets"] == ["DLBASE_SIGNING_KEY", "DLBASE_SIGNING_PASSWORD"]  # dlbase itself, at start
        pytest_children = [c for c in rest if "pytest" in " ".join(c["argv"])]
        assert pytest_children, children  # the probe saw testinfra's pytest start
        assert all(c["secrets"] == [] for c in rest), rest
        after = {t: client.manifest_digest(REPO, t) for t in client.tags(REPO) if not t.startswith("sha256-")}
        assert after == image_tags  # the image was not pushed again

        res = dlbase(sp, "trust", ref, "--key", str(keydir / "cosign.pub"), "--json")
        verifications = {v["host_label"]: v for v in json.loads(res.stdout)["verifications"]}
        assert verifications["cpu-ci"]["result"] == "failed" and verifications["cpu-ci"]["failed_checks"]
        # the attested run names the suites that ran (the host's, and the image's own copy) and
        # the host facts taken while it ran
        att, _ = client.manifest(REPO, store.att_tag(digest))
        runs = [json.loads(base64.b64decode(json.loads(client.blob(REPO, la["digest"]))["payload"]))["predicate"]
                for la in att["layers"] if la["annotations"]["predicateType"] == predicates.VERIFICATION_TYPE]
        [run] = [r for r in runs if r["dlbase"]["source"] == "dlbase verify --attest"]
        assert {c["name"] for c in run["configuration"]} == {"tests/infra", "/opt/dlbase/tests"}
        image_suite = next(c for c in run["configuration"] if c["name"] == "/opt/dlbase/tests")
        checkout = predicates.suite_digest(predicates.folder_files(sp.root / "tests" / "image"))
        assert image_suite["digest"]["sha256"] == checkout["sha256"]  # the copy built into the image
        assert run["result"] == "fail" and run["failedTests"]
        assert run["dlbase"]["host"]["label"] == "cpu-ci" and "shmBytes" in run["dlbase"]["host"]
        gpu = dlbase(sp, "trust", ref, "--key", str(keydir / "cosign.pub"), "--require-gpu-verified")
        assert gpu.returncode == 19 and "no verification meets the policy" in gpu.stderr

        # a wrong passphrase stops push --sign before anything is pushed again
        wrong = dlbase(sp, "push", image["ref"], "--registry", reg.host, "--sign", str(keydir / "cosign.key"),
                       env={"DLBASE_SIGNING_PASSWORD": "nope"})
        assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr and "Traceback" not in wrong.stderr


DB = Path(__file__).resolve().parents[1] / "unit" / "data" / "osv"  # the fixture advisories (test_scan.py)
APT_CVE = "DEBIAN-CVE-2011-3374"  # apt's, in the fixture advisories; images/vex answers it
COSIGN_FLAGS = ["--insecure-ignore-tlog=true", "--allow-http-registry=true", "--allow-insecure-registry=true"]


def cosign_statements(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """`cosign verify-attestation ARGS` (HOME, caches and Docker config under tmp_path), and
    the statements it printed."""
    home = tmp_path / "cosign-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TUF_ROOT": str(home / "tuf"),
           "DOCKER_CONFIG": str(home / "docker")}
    res = subprocess.run([shutil.which("cosign") or "cosign", "verify-attestation", *args, *COSIGN_FLAGS], env=env,
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    printed = [json.loads(base64.b64decode(json.loads(line)["payload"]))
               for line in res.stdout.splitlines() if line.strip().startswith("{")]
    return res, printed


def test_push_sign_attaches_the_scan_and_vex_and_scan_attest_rescans(engine, image, tmp_path):
    """With a database, push --sign attaches the scan and the VEX (cosign verifies both);
    `scan REF@DIGEST --attest` appends a fresh scan; trust shows the newest scan and a
    policy can refuse on its age or findings; the roles decide whose scans count."""
    simulate_passed_verify(image)
    sp = image["sp"]
    made = {}
    for name, role in (("publisher", ["--role", "publisher"]), ("scanner", ["--role", "scanner", "--label", "nightly"]),
                       ("verifier", ["--role", "verifier", "--label", "h200"])):
        res = dlbase(sp, "key", "generate", "--out", str(tmp_path / name), *role, "--json")
        assert res.returncode == 0, res.stderr
        made[name] = json.loads(res.stdout)
    pub = made["publisher"]["public_key"]
    with running_registry(tmp_path) as reg:
        pushed = dlbase(sp, "push", image["ref"], "--registry", reg.host, "--sign", made["publisher"]["private_key"],
                        "--scan-db", str(DB), "--json")
        assert pushed.returncode == 0, pushed.stderr
        body = json.loads(pushed.stdout)
        signing = body["signing"]
        sizes = {a["predicateType"]: a["bytes"] for a in signing["attestations"]}
        assert list(sizes) == [predicates.SBOM_TYPE, predicates.PROVENANCE_TYPE, predicates.VERIFICATION_TYPE,
                               VULN_TYPE, OPENVEX_TYPE]
        scanned = signing["scan"]
        assert scanned["attached"] is True and scanned["vex_applied"] == 1 and scanned["vex_statements"] == 1
        assert scanned["counts"]["LOW"] >= 1 and scanned["lock_agrees"] is True  # Debian's ensurepip pip 23.0.1
        print(f"\nSCAN ATTESTATIONS (small image, fixture db): vuln {sizes[VULN_TYPE]} bytes, "
              f"openvex {sizes[OPENVEX_TYPE]} bytes (DSSE envelopes); counts {scanned['counts']}")
        digest = body["tags"][image["immutable"]]["digest"]
        ref, pinned = f"{reg.host}/{REPO}:{image['immutable']}", f"{reg.host}/{REPO}@{digest}"

        # cosign itself accepts both, by its short name and by the full predicate type
        if shutil.which("cosign"):
            for ptype in ("vuln", VULN_TYPE, OPENVEX_TYPE):
                res, printed = cosign_statements(tmp_path, "--key", pub, "--type", ptype, pinned)
                assert res.returncode == 0, (ptype, res.stderr)
                assert {s["predicateType"] for s in printed} == {VULN_TYPE if ptype == "vuln" else ptype}
            vex_doc = next(s for s in printed if s["predicateType"] == OPENVEX_TYPE)["predicate"]
            assert [p["@id"] for p in vex_doc["statements"][0]["products"]] == [purls.oci(f"{reg.host}/{REPO}", digest)]
            res, printed = cosign_statements(tmp_path, "--key", pub, "--type", "openvex", pinned)
            print(f"cosign verify-attestation --type openvex: exit {res.returncode}; "
                  f"{[s['predicateType'] for s in printed]}; {res.stderr.strip()[-200:]}")

        res = dlbase(sp, "trust", ref, "--key", pub, "--json")
        assert res.returncode == 0, res.stderr
        shown = json.loads(res.stdout)
        assert shown["scan"]["counts"] == scanned["counts"] and shown["scan"]["vex_applied"] == 1
        assert shown["scan"]["database"].startswith("2026-11-20") and shown["scan"]["scans"] == 1
        assert shown["vex"]["statements"] == 1 and shown["other_attestations"] == []
        table = dlbase(sp, "trust", ref, "--key", pub)
        assert "scan (newest of 1)" in table.stdout and "1 answered by VEX" in table.stdout

        # the policy: age and severity (pip's LOW PYSEC-2023-228 is open; the apt CVE is VEX'd)
        assert dlbase(sp, "trust", ref, "--key", pub, "--max-scan-age", "1d", "--scan-fail-on", "medium").returncode == 0
        low = dlbase(sp, "trust", ref, "--key", pub, "--scan-fail-on", "low")
        assert low.returncode == 19 and "PYSEC-2023-228" in low.stderr and "scan requirement is not met" in low.stderr
        policy = tmp_path / "policy.yaml"
        policy.write_text(f"publishers:\n  - key: {pub}\nscanners:\n  - label: nightly\n"
                          f"    key: {made['scanner']['public_key']}\nrequire:\n  signed_tag: false\n"
                          "  scan:\n    max_age: 7d\n    fail_on: LOW\n")
        res = dlbase(sp, "pull", pinned, "--policy", str(policy))
        assert res.returncode == 19 and "PYSEC-2023-228" in res.stderr  # pull refuses too

        # a fresh scan of the published image by the scanner's key, without a rebuild or a push
        before = {t: RegistryClient(reg.host).manifest_digest(REPO, t) for t in RegistryClient(reg.host).tags(REPO)
                  if not t.startswith("sha256-")}
        # Only the registry digest's reference goes (the local tag keeps the image). The
        # classic store adds that reference on push; the containerd store does not.
        if engine.image_exists(pinned):
            engine.remove_image(pinned)
        assert not engine.image_exists(pinned)
        rescan = dlbase(sp, "scan", pinned, "--attest", "--key", made["scanner"]["private_key"], "--db", str(DB),
                        "--max-db-age", "100000", "--json")
        assert rescan.returncode == 0, rescan.stderr
        attached = json.loads(rescan.stdout)["attestation"]
        assert [a["predicateType"] for a in attached["attestations"]] == [VULN_TYPE]
        assert attached["key"] == made["scanner"]["fingerprint"]
        assert engine.image_exists(pinned)  # scan --attest pulled the digest it was not given locally
        client = RegistryClient(reg.host)
        assert {t: client.manifest_digest(REPO, t) for t in client.tags(REPO) if not t.startswith("sha256-")} == before
        # a verifier's key may not attest scans: listed as ignored even where the policy names it
        bad = dlbase(sp, "scan", pinned, "--attest", "--key", made["verifier"]["private_key"], "--db", str(DB),
                     "--max-db-age", "100000", "--json")
        assert bad.returncode == 0, bad.stderr

        res = dlbase(sp, "trust", pinned, "--key", pub, "--verifier", f"h200={made['verifier']['public_key']}", "--json")
        shown = json.loads(res.stdout)
        assert shown["scan"]["scans"] == 1 and shown["scan"]["signer"]["roles"] == ["publisher"]
        ignored = {i["fingerprint"]: i for i in shown["ignored"] if i["predicateType"] == VULN_TYPE}
        assert set(ignored) == {made["scanner"]["fingerprint"], made["verifier"]["fingerprint"]}
        assert "verifiers attest verification results only" in ignored[made["verifier"]["fingerprint"]]["why"]
        res = dlbase(sp, "trust", pinned, "--key", pub, "--scanner", f"nightly={made['scanner']['public_key']}",
                     "--max-scan-age", "1h", "--json")
        assert res.returncode == 0, res.stderr
        shown = json.loads(res.stdout)
        assert shown["scan"]["scans"] == 2 and shown["scan"]["signer"]["label"] == "nightly"
        assert [i["fingerprint"] for i in shown["ignored"] if i["predicateType"] == VULN_TYPE] == \
            [made["verifier"]["fingerprint"]]


def attested(client: RegistryClient, digest: str) -> dict[str, bytes]:
    """predicate type -> the signed statement's payload bytes (read back from the registry)."""
    att, _ = client.manifest(REPO, store.att_tag(digest))
    return {la["annotations"]["predicateType"]: base64.b64decode(json.loads(client.blob(REPO, la["digest"]))["payload"])
            for la in att["layers"]}


def scan_json(sp, pinned: str, *args: str) -> dict:
    res = dlbase(sp, "scan", pinned, "--db", str(DB), "--max-db-age", "100000", "--json", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_push_publishes_vex_by_purl_and_the_sbom_file_is_the_attested_one(engine, image, tmp_path):
    """VEX by purl and one SBOM per image: `push --sign` publishes the repository's VEX
    (images/vex/, by variant name) as Trivy and Grype match it (the pushed digest's
    ``pkg:oci`` purl, apt by the SBOM's purl); the SBOM file push names is the attested
    predicate byte for byte, Debian packages included; `dlbase scan` of the pushed image
    applies that purl-form document alone, and not to another digest."""
    simulate_passed_verify(image)
    sp = image["sp"]
    assert dlbase(sp, "key", "generate", "--out", str(tmp_path / "keys")).returncode == 0
    with running_registry(tmp_path) as reg:
        pushed = dlbase(sp, "push", image["ref"], "--registry", reg.host, "--sign", str(tmp_path / "keys" / "cosign.key"),
                        "--json")
        assert pushed.returncode == 0, pushed.stderr
        body = json.loads(pushed.stdout)
        digest = body["tags"][image["immutable"]]["digest"]
        payloads = attested(RegistryClient(reg.host), digest)

        # one SBOM: the report's file is the attested predicate's bytes, Debian packages and all
        sbom_file = Path(body["sbom_file"]).read_bytes()
        assert b'"predicate":' + sbom_file + b"," in payloads[predicates.SBOM_TYPE]
        sbom = json.loads(sbom_file)
        listed = [c["purl"] for c in sbom["components"]]
        assert sum(p.startswith("pkg:deb/debian/") for p in listed) > 50
        assert any(p.startswith("pkg:pypi/dlbase-tiny@1.0") for p in listed)
        assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(sbom_file.decode()) is None
        print(f"\nSBOM: {len(listed)} components, {len(sbom_file)} bytes (file == attested predicate)")

        # the VEX names the pushed digest's pkg:oci purl and apt by the SBOM's purl
        vex_doc = json.loads(payloads[OPENVEX_TYPE])["predicate"]
        [statement] = vex_doc["statements"]
        apt = [p for p in listed if p.startswith("pkg:deb/debian/apt@")]
        image_purl = purls.oci(f"{reg.host}/{REPO}", digest)
        assert statement["products"] == [{"@id": image_purl, "subcomponents": [{"@id": p} for p in apt]}]
        assert image_purl == (f"pkg:oci/pytorch@sha256%3A{digest.split(':')[1]}"
                              f"?repository_url={reg.host}/{REPO}")

        # `dlbase scan` of the pushed image applies the purl-form document alone
        pinned = f"{reg.host}/{REPO}@{digest}"
        engine.pull(f"{reg.host}/{REPO}", digest)
        try:
            only_purls = tmp_path / "vex-purl-form"
            only_purls.mkdir()
            (only_purls / "published.json").write_text(json.dumps(vex_doc))
            none = scan_json(sp, pinned, "--no-vex")
            assert APT_CVE in {f["id"] for f in none["findings"]}
            applied = scan_json(sp, pinned, "--vex", str(only_purls))
            assert [f["id"] for f in applied["vex"]] == [APT_CVE]
            assert APT_CVE not in {f["id"] for f in applied["findings"]}
            # the same statement about another digest answers nothing here
            other = json.loads(json.dumps(vex_doc))
            other["statements"][0]["products"][0]["@id"] = purls.oci(f"{reg.host}/{REPO}", "sha256:" + "0" * 64)
            (only_purls / "published.json").write_text(json.dumps(other))
            elsewhere = scan_json(sp, pinned, "--vex", str(only_purls))
            assert elsewhere["vex"] == [] and APT_CVE in {f["id"] for f in elsewhere["findings"]}
        finally:
            if engine.image_exists(pinned):
                engine.remove_image(pinned)


def test_registry_cut_while_push_signs(engine, image, tmp_path):
    """The registry goes away after the image is pushed, at the signature's manifest PUT
    (a loopback proxy cut there): one message that says the image is published and the
    signing failed, exit 5, no manifest naming a missing blob; running the same push
    again completes the evidence."""
    simulate_passed_verify(image)
    sp = image["sp"]
    keydir = tmp_path / "keys"
    assert dlbase(sp, "key", "generate", "--out", str(keydir)).returncode == 0
    with running_registry(tmp_path) as reg:
        upstream = ("127.0.0.1", int(reg.host.rsplit(":", 1)[1]))
        proxy = CutProxy(upstream, r"^PUT /v2/\S+/manifests/sha256-[0-9a-f]{64}\.sig ")
        try:
            res = dlbase(sp, "push", image["ref"], "--registry", proxy.host, "--sign", str(keydir / "cosign.key"))
        finally:
            proxy.close()
        assert res.returncode == 5, res.stderr
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "was pushed, but signing/attaching failed" in errors[0], res.stderr
        assert "cannot be reached" in errors[0] and "Traceback" not in res.stderr
        assert any(".sig" in line for line in proxy.seen)
        tags = RegistryClient(reg.host).tags(REPO)
        assert image["immutable"] in tags
        assert [t for t in tags if t.startswith("sha256-")] == []  # no signature, no attestation manifest
        assert dangling_references(reg.host, REPO) == []

        again = CutProxy(upstream, r"^NEVER$")  # the same address family, nothing cut
        try:
            ok = dlbase(sp, "push", image["ref"], "--registry", again.host, "--sign", str(keydir / "cosign.key"))
            assert ok.returncode == 0, ok.stderr
            trusted = dlbase(sp, "trust", f"{again.host}/{REPO}:{image['immutable']}", "--key",
                             str(keydir / "cosign.pub"))
            assert trusted.returncode == 0, trusted.stderr
        finally:
            again.close()
        assert dangling_references(reg.host, REPO) == []
