"""dlbase and cosign agree, both ways, on a real registry (Debian's docker-registry on 127.0.0.1).

- `cosign verify --key` and `cosign verify-attestation --key --type T` accept every
  signature and attestation dlbase writes (SBOM, provenance, verification, scan, VEX,
  rebuilt identical), and refuse
  them under another key;
- `dlbase trust` accepts what `cosign sign` and `cosign attest` write (cosign 2.5 writes
  in-toto Statement v0.1), lists a predicate type it does not read as present, and still
  checks the image when cosign's attestations sit next to dlbase's;
- signed tags agree: `cosign verify -a tag=T` accepts dlbase's per-tag signatures, and
  `dlbase trust REF:T` accepts `cosign sign -a tag=T` but refuses (exit 20) a cosign
  signature that names no tag;
- all of it with a key pair made by `dlbase key generate` and one made by
  `cosign generate-key-pair` (each tool reads the other's encrypted key file).

The subject is a tiny real manifest uploaded through the registry API; the predicates are
the ones `push --sign` computes (predicates.py), from small inputs. No Docker daemon.
cosign comes from tools/host/setup.sh (Debian 13's package); without it these tests skip,
and under DLBASE_REQUIRE_DOCKER=1 (CI) they fail.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from dlbase.registry.client import RegistryClient
from dlbase.trust import evidence, keys, predicates, sources

from tests.support import cosign_cli
from tests.support.registry import registry_binary, running_registry

ROOT = Path(__file__).resolve().parents[2]
REPO = "team/pytorch"
PASSWORD = "interop passphrase"
VERIFY_FLAGS = ["--insecure-ignore-tlog=true", "--allow-http-registry=true", "--allow-insecure-registry=true"]
SIGN_FLAGS = ["--tlog-upload=false", "--allow-http-registry=true", "--allow-insecure-registry=true", "-y"]
REVIEW_TYPE = "https://example.com/attestation/review/v1"  # a type dlbase does not read
REQUIRED = os.environ.get("DLBASE_REQUIRE_DOCKER", "") == "1"

pytestmark = pytest.mark.skipif(registry_binary() is None and not REQUIRED, reason="docker-registry is not installed")


@pytest.fixture(scope="module")
def cosign_bin() -> str:
    found = shutil.which("cosign")
    if found is None:
        reason = "cosign is not installed (tools/host/setup.sh installs Debian 13's cosign)"
        if REQUIRED:
            pytest.fail(f"{reason}; DLBASE_REQUIRE_DOCKER=1 makes this a failure", pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """cosign's HOME: its caches land here, never in the real home."""
    return tmp_path_factory.mktemp("cosign-home")


def cosign(cosign_bin: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    return cosign_cli.cosign(cosign_bin, home, PASSWORD, *args)


def dlbase(*args: str) -> subprocess.CompletedProcess:
    return cosign_cli.dlbase(PASSWORD, *args)


@pytest.fixture(scope="module")
def keydirs(tmp_path_factory, cosign_bin, home) -> dict[str, Path]:
    """`dlbase` (dlbase key generate), `cosign` (cosign generate-key-pair) and `other` (trusted by nobody)."""
    return cosign_cli.key_pairs(tmp_path_factory.mktemp("keys"), cosign_bin, home, PASSWORD)


def dlbase_predicates(name: str) -> list[tuple[str, dict]]:
    """The predicates `push --sign` attaches, and a rebuilt-identical statement (`rebuild-check
    --attest`), computed by predicates.py from small inputs."""
    image_id = "sha256:" + "cd" * 32
    labels = {"org.opencontainers.image.revision": "0" * 40, "org.opencontainers.image.base.name": "ubuntu:22.04",
              "org.opencontainers.image.base.digest": "sha256:" + "ab" * 32, "dlbase.variant": "v1",
              "dlbase.lock-hash": "97afa4dbe9f1", "org.opencontainers.image.created": "2026-01-01T00:00:00Z"}
    lock = sources.Material("images/v1/requirements.lock", b"numpy==2.2.1 \\\n    --hash=sha256:" + b"aa" * 32 + b"\n")
    built = sources.BuiltFrom(lock=lock, dockerfile=sources.Material("images/v1/Dockerfile", b"FROM ubuntu:22.04\n"),
                              os_id="ubuntu", os_version="22.04")
    sbom = predicates.sbom_predicate(image_id=image_id, name=name, python={"numpy": "2.2.1"},
                                     debs=[("libc6", "2.35-0ubuntu3.8", "amd64")], built=built, labels=labels)
    provenance = predicates.provenance_predicate(labels=labels, image_id=image_id, created="2026-01-01T00:00:00Z",
                                                 build_seconds=60, dockerfile=built.dockerfile, lock=built.lock,
                                                 engine_version={"Version": "20.10.24", "ApiVersion": "1.41"},
                                                 build_type="https://dlbase.dev/build/buildkit/v1")
    verification = predicates.verification_predicate(
        passed=True, verified_at="2026-01-01T00:10:00+00:00", counts={"host": {"passed": 3}, "image": {"passed": 5}},
        failed_checks=[], passed_checks=["cuda", "ddp"], require_gpu=True, partial=False, gpus_used=True,
        suites={"tests/infra": {"sha256": "11" * 32, "files": 3}, "/opt/dlbase/tests": {"sha256": "22" * 32,
                                                                                         "files": 9}},
        host={"label": "gpu-h200-01", "driver": "550.54.15", "gpus": [{"name": "NVIDIA H200", "sm": "sm_90"}]},
        image=f"{name}@sha256:...", source="dlbase verify --attest")
    rebuilt = predicates.rebuilt_predicate(
        rebuilt_digest="sha256:" + "cd" * 32, published=f"{name}@sha256:...", variant="v1", revision="0" * 40,
        repository="https://example.org/dlbase", source_date_epoch=1764547200,
        builder={"docker": "26.1.5", "buildx": "0.13.1", "buildkit": "v0.0.0+unknown"}, host_label="second-builder",
        debian={"libc6": "2.35-0ubuntu3.8"}, rebuilt_at="2026-01-02T00:00:00+00:00", builds=["sha256:" + "cd" * 32] * 2)
    return [(predicates.SBOM_TYPE, sbom), (predicates.PROVENANCE_TYPE, provenance),
            (predicates.VERIFICATION_TYPE, verification), *scan_predicates(name), (predicates.REBUILT_TYPE, rebuilt)]


def scan_predicates(name: str) -> list[tuple[str, dict]]:
    """The scan and the VEX `push --sign` attaches: torch 2.6.0 against the fixture
    advisories, with the repository's VEX statement about the default variant."""
    from dlbase.core import purls
    from dlbase.vuln import attestation, vex
    from dlbase.vuln import db as db_mod
    from dlbase.vuln import report as report_mod
    from dlbase.image.inventory import Inventory

    statements = vex.load_dir(ROOT / vex.DEFAULT_DIR)
    target = vex.Target(variant="torch2.6-cu124-runtime-debian12", repository="dlbase/pytorch")
    scan = report_mod.build(name, Inventory(os_ecosystem=None, os_pretty=None, python={"torch": "2.6.0"}),
                            db_mod.load(ROOT / "tests" / "unit" / "data" / "osv"), statements=statements,
                            target=target, lock_only=True)
    return [(attestation.VULN_TYPE, attestation.vuln_predicate(scan)),
            (attestation.OPENVEX_TYPE, attestation.vex_document(statements, target, purls.oci(name, "sha256:" + "cd" * 32),
                                                                ["pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12"]))]


def statements_printed(stdout: str) -> list[dict]:
    """The statements inside the DSSE envelopes `cosign verify-attestation` prints, one per line."""
    found = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            found.append(json.loads(base64.b64decode(json.loads(line)["payload"])))
    return found


TABLE: list[tuple[str, str, str, int, str]] = []  # (who wrote, key, what was checked, exit, outcome)


def note(writer: str, key: str, check: str, res: subprocess.CompletedProcess, outcome: str) -> None:
    TABLE.append((writer, key, check, res.returncode, outcome))


@pytest.fixture(scope="module", autouse=True)
def print_table():
    yield
    if TABLE:
        print("\nCOSIGN INTEROP\n| written by | key | check | exit | outcome |\n|---|---|---|---|---|")
        for row in TABLE:
            print("| " + " | ".join(str(c) for c in row) + " |")


# --------------------------------------------------------------------------- cosign checks dlbase


@pytest.mark.parametrize("maker", ["dlbase", "cosign"])
def test_cosign_verifies_everything_dlbase_writes_and_refuses_another_key(cosign_bin, home, keydirs, maker,
                                                                            tmp_path):
    pair = keys.load_private(str(keydirs[maker] / "cosign.key"), PASSWORD.encode())  # dlbase reads cosign's key too
    pub, wrong = str(keydirs[maker] / "cosign.pub"), str(keydirs["other"] / "cosign.pub")
    with running_registry(tmp_path) as reg:
        digest = reg.push_manifest(REPO, "v1", payload=f"layer {maker}".encode())
        subject = evidence.Subject(reg.host, REPO, digest)
        t0 = time.monotonic()
        attached = evidence.attach(RegistryClient(reg.host), subject, pair, sign=True,
                                   attestations=dlbase_predicates(subject.name))
        print(f"\nSIGNING COST ({maker} key): {time.monotonic() - t0:.2f}s, {attached['registry_bytes']} registry "
              f"bytes, attestations {[a['bytes'] for a in attached['attestations']]}")
        ref = subject.reference

        res = cosign(cosign_bin, home, "verify", "--key", pub, *VERIFY_FLAGS, ref)
        assert res.returncode == 0, res.stderr
        [payload] = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("[")]
        assert payload[0]["critical"]["image"]["docker-manifest-digest"] == digest
        assert payload[0]["critical"]["identity"]["docker-reference"] == subject.name
        note("dlbase", maker, "cosign verify", res, "accepted")

        for ptype, _predicate in dlbase_predicates(subject.name):
            res = cosign(cosign_bin, home, "verify-attestation", "--key", pub, "--type", ptype, *VERIFY_FLAGS, ref)
            assert res.returncode == 0, (ptype, res.stderr)
            printed = statements_printed(res.stdout)
            assert [s["predicateType"] for s in printed] == [ptype]
            assert sorted(printed[0]) == ["_type", "predicate", "predicateType", "subject"]  # what cosign 3 allows
            note("dlbase", maker, f"cosign verify-attestation --type {ptype}", res, "accepted")

        res = cosign(cosign_bin, home, "verify-attestation", "--key", pub, "--type", "vuln", *VERIFY_FLAGS, ref)
        assert res.returncode == 0 and [s["predicateType"] for s in statements_printed(res.stdout)] == [
            "https://cosign.sigstore.dev/attestation/vuln/v1"], res.stderr  # cosign's own name for the type
        note("dlbase", maker, "cosign verify-attestation --type vuln", res, "accepted")

        res = cosign(cosign_bin, home, "verify", "--key", wrong, *VERIFY_FLAGS, ref)
        assert res.returncode != 0 and "no matching signatures" in res.stderr, res.stderr
        note("dlbase", f"{maker}, checked with another key", "cosign verify", res, "refused: no matching signatures")
        res = cosign(cosign_bin, home, "verify-attestation", "--key", wrong, "--type", predicates.VERIFICATION_TYPE,
                     *VERIFY_FLAGS, ref)
        assert res.returncode != 0, res.stdout
        note("dlbase", f"{maker}, checked with another key", "cosign verify-attestation", res, "refused")
        res = cosign(cosign_bin, home, "verify-attestation", "--key", pub, "--type", REVIEW_TYPE, *VERIFY_FLAGS, ref)
        assert res.returncode != 0  # cosign compares --type with predicateType exactly
        note("dlbase", maker, "cosign verify-attestation --type (absent type)", res, "refused: none of that type")


# --------------------------------------------------------------------------- dlbase checks cosign


def cosign_attest(cosign_bin, home, key: Path, ref: str, ptype: str, predicate: dict, tmp_path: Path):
    path = tmp_path / f"predicate-{abs(hash(ptype))}.json"
    path.write_text(json.dumps(predicate))
    res = cosign(cosign_bin, home, "attest", "--key", str(key), "--type", ptype, "--predicate", str(path),
                 *SIGN_FLAGS, ref)
    assert res.returncode == 0, res.stderr
    return res


@pytest.mark.parametrize("maker", ["dlbase", "cosign"])
def test_dlbase_trusts_what_cosign_signs_and_attests(cosign_bin, home, keydirs, maker, tmp_path):
    key, pub = keydirs[maker] / "cosign.key", str(keydirs[maker] / "cosign.pub")
    with running_registry(tmp_path) as reg:
        digest = reg.push_manifest(REPO, "v1", payload=f"cosign-signed {maker}".encode())
        ref = f"{reg.host}/{REPO}@{digest}"
        res = cosign(cosign_bin, home, "sign", "--key", str(key), *SIGN_FLAGS, ref)
        assert res.returncode == 0, res.stderr
        bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
               "components": [{"type": "library", "name": "numpy", "version": "2.2.1",
                               "purl": "pkg:pypi/numpy@2.2.1"}]}
        cosign_attest(cosign_bin, home, key, ref, predicates.SBOM_TYPE, bom, tmp_path)
        tests_run = {"result": "pass", "configuration": [{"name": "ci.yml", "digest": {"sha256": "33" * 32}}],
                     "passedTests": ["unit"]}  # another tool's test-result: no dlbase facts
        cosign_attest(cosign_bin, home, key, ref, predicates.VERIFICATION_TYPE, tests_run, tmp_path)
        cosign_attest(cosign_bin, home, key, ref, REVIEW_TYPE, {"reviewer": "alice"}, tmp_path)

        statement_types = {json.loads(base64.b64decode(json.loads(RegistryClient(reg.host).blob(REPO, d["digest"]))
                                                       ["payload"]))["_type"]
                           for d in RegistryClient(reg.host).manifest(REPO, f"sha256-{digest[7:]}.att")[0]["layers"]}
        assert statement_types == {"https://in-toto.io/Statement/v0.1"}  # what cosign 2.5 writes

        res = dlbase("trust", ref, "--key", pub, "--json")
        assert res.returncode == 0, res.stderr
        body = json.loads(res.stdout)
        assert body["signature"]["identity"] == f"{reg.host}/{REPO}"
        assert sorted(body["attestations"]) == sorted([predicates.SBOM_TYPE, predicates.VERIFICATION_TYPE,
                                                       REVIEW_TYPE])
        assert body["other_attestations"] == [REVIEW_TYPE]  # listed, not an error
        signer = body["sbom"].pop("signer")
        assert body["sbom"] == {"components": 1, "python": 1, "debian": 0}
        assert signer["fingerprint"] == keys.fingerprint(keys.load_public(pub)) and signer["roles"] == ["publisher"]
        assert body["ignored"] == []  # every layer is the one key's: nothing unknown
        [run] = body["verifications"]
        assert run["result"] == "passed" and run["host_label"] is None and run["gpus"] == []
        assert run["signer"]["fingerprint"] == signer["fingerprint"]
        note("cosign sign + attest (v0.1)", maker, "dlbase trust", res, "accepted; review type listed")

        table = dlbase("trust", ref, "--key", pub)
        assert table.returncode == 0, table.stderr
        assert "other attestations" in table.stdout and REVIEW_TYPE in table.stdout.replace("\n", "")

        gpu = dlbase("trust", ref, "--key", pub, "--require-gpu-verified")
        assert gpu.returncode == 19, gpu.stderr  # a test run without host facts proves no GPU
        note("cosign attest test-result (no host facts)", maker, "dlbase trust --require-gpu-verified", gpu,
             "refused: policy not met")

        wrong = dlbase("trust", ref, "--key", str(keydirs["other"] / "cosign.pub"))
        assert wrong.returncode == 17 and "Traceback" not in wrong.stderr, wrong.stderr
        note("cosign sign", f"{maker}, checked with another key", "dlbase trust", wrong, "refused: bad signature")


def test_cosign_attestations_next_to_dlbase_ones_break_nothing(cosign_bin, home, keydirs, tmp_path):
    """The reported failure: one cosign v0.1 attestation appended to an image dlbase signed
    made `dlbase trust` fail for the whole image. Now both tools read both."""
    pair = keys.load_private(str(keydirs["dlbase"] / "cosign.key"), PASSWORD.encode())
    key, pub = keydirs["dlbase"] / "cosign.key", str(keydirs["dlbase"] / "cosign.pub")
    with running_registry(tmp_path) as reg:
        digest = reg.push_manifest(REPO, "v1", payload=b"mixed")
        subject = evidence.Subject(reg.host, REPO, digest)
        evidence.attach(RegistryClient(reg.host), subject, pair, sign=True,
                        attestations=dlbase_predicates(subject.name))
        cosign_attest(cosign_bin, home, key, subject.reference, REVIEW_TYPE, {"reviewer": "bob"}, tmp_path)

        # The publisher's own "GPU passed" does not count: only a verifier key's does.
        res = dlbase("trust", subject.reference, "--key", pub, "--require-gpu-verified", "--gpu-arch", "sm_90")
        assert res.returncode == 19 and "not a verifier key" in res.stderr, res.stderr
        note("dlbase + cosign attest", "dlbase (publisher only)", "dlbase trust --require-gpu-verified", res,
             "refused: the publisher is no verifier")
        res = dlbase("trust", subject.reference, "--key", pub, "--verifier", f"gpu-h200-01={pub}",
                     "--require-gpu-verified", "--gpu-arch", "sm_90", "--json")
        assert res.returncode == 0, res.stderr
        body = json.loads(res.stdout)
        assert body["other_attestations"] == [REVIEW_TYPE]
        assert body["built_from"]["lock_hash"] == "97afa4dbe9f1"
        [gpu] = body["verifications"]
        assert gpu["meets_policy"] and gpu["host_label"] == "gpu-h200-01"
        note("dlbase + cosign attest", "dlbase (publisher, also a verifier)",
             "dlbase trust --require-gpu-verified --gpu-arch sm_90", res, "accepted")
        for ptype in (predicates.VERIFICATION_TYPE, REVIEW_TYPE):
            res = cosign(cosign_bin, home, "verify-attestation", "--key", pub, "--type", ptype, *VERIFY_FLAGS,
                         subject.reference)
            assert res.returncode == 0, res.stderr
            assert [s["predicateType"] for s in statements_printed(res.stdout)] == [ptype]
        note("dlbase + cosign attest", "dlbase", "cosign verify-attestation (both writers' types)", res, "accepted")


# --------------------------------------------------------------------------- signed tags, both ways


@pytest.mark.parametrize("maker", ["dlbase", "cosign"])
def test_signed_tags_agree_between_cosign_and_dlbase(cosign_bin, home, keydirs, maker, tmp_path):
    """dlbase's signature per pushed tag is cosign's `-a tag=TAG`; `dlbase trust REF:TAG`
    needs a publisher signature naming TAG, so a plain `cosign sign` (no `-a tag=`) of an
    image checked by tag is refused (exit 20) while the same image by digest is accepted."""
    pair = keys.load_private(str(keydirs[maker] / "cosign.key"), PASSWORD.encode())
    key, pub = keydirs[maker] / "cosign.key", str(keydirs[maker] / "cosign.pub")
    with running_registry(tmp_path) as reg:
        digest = reg.push_manifest(REPO, "v1", payload=f"tagged {maker}".encode())
        subject = evidence.Subject(reg.host, REPO, digest)
        evidence.attach(RegistryClient(reg.host), subject, pair, sign=True, attestations=[], tags=("v1",))
        res = cosign(cosign_bin, home, "verify", "--key", pub, "-a", "tag=v1", *VERIFY_FLAGS, subject.reference)
        assert res.returncode == 0, res.stderr
        note("dlbase push --sign (tag v1)", maker, "cosign verify -a tag=v1", res, "accepted")
        res = cosign(cosign_bin, home, "verify", "--key", pub, "-a", "tag=v2", *VERIFY_FLAGS, subject.reference)
        assert res.returncode != 0, res.stdout
        note("dlbase push --sign (tag v1)", maker, "cosign verify -a tag=v2", res, "refused")
        res = dlbase("trust", f"{reg.host}/{REPO}:v1", "--key", pub)
        assert res.returncode == 0, res.stderr

        named = reg.push_manifest(REPO, "v2", payload=f"cosign tagged {maker}".encode())
        res = cosign(cosign_bin, home, "sign", "--key", str(key), "-a", "tag=v2", *SIGN_FLAGS,
                     f"{reg.host}/{REPO}@{named}")
        assert res.returncode == 0, res.stderr
        res = dlbase("trust", f"{reg.host}/{REPO}:v2", "--key", pub, "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["signature"]["tag"] == "v2"
        note("cosign sign -a tag=v2", maker, "dlbase trust REF:v2", res, "accepted")

        plain = reg.push_manifest(REPO, "v3", payload=f"cosign untagged {maker}".encode())
        res = cosign(cosign_bin, home, "sign", "--key", str(key), *SIGN_FLAGS, f"{reg.host}/{REPO}@{plain}")
        assert res.returncode == 0, res.stderr
        res = dlbase("trust", f"{reg.host}/{REPO}:v3", "--key", pub)
        assert res.returncode == 20 and "names tag v3" in res.stderr and "Traceback" not in res.stderr, res.stderr
        note("cosign sign (no -a tag)", maker, "dlbase trust REF:v3", res, "refused: no signature names the tag")
        res = dlbase("trust", f"{reg.host}/{REPO}@{plain}", "--key", pub)
        assert res.returncode == 0, res.stderr
        note("cosign sign (no -a tag)", maker, "dlbase trust REF@DIGEST", res, "accepted")
