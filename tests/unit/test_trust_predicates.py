"""The predicates as data: provenance from build labels, SBOM with Debian packages,
the suite hash, and the host facts' CUDA driver version parsing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dlbase.engine import builderchoice
from dlbase.trust import predicates, sbom, sources
from dlbase.verify import hostfacts

LABELS = {
    "org.opencontainers.image.source": "https://example.org/dlbase",
    "org.opencontainers.image.revision": "0123456789abcdef",
    "org.opencontainers.image.base.name": "dlbase/debian:12-minbase",
    "org.opencontainers.image.base.digest": "sha256:" + "ab" * 32,
    "dlbase.variant": "v1",
    "dlbase.lock-hash": "97afa4dbe9f1",
}


# The newest `docker history` entry of each kind, as Docker 26.1 on this project's daemon
# records them: a BuildKit build of the templates, a classic (DOCKER_BUILDKIT=0) build,
# and a bootstrapped base that no Dockerfile step made.
BUILDKIT_STEP = {"Comment": "buildkit.dockerfile.v0", "CreatedBy": "LABEL dlbase.cuda=12.4 dlbase.cuda-line=cu124"}
CLASSIC_STEP = {"Comment": "", "CreatedBy": "/bin/sh -c #(nop)  LABEL dlbase.test-session=review-bugs"}
IMPORTED_STEP = {"Comment": "Imported from -", "CreatedBy": ""}


def test_the_build_type_is_the_builder_the_image_history_names():
    assert builderchoice.built_by([BUILDKIT_STEP, IMPORTED_STEP]) == builderchoice.BUILDKIT
    assert builderchoice.built_by([CLASSIC_STEP, BUILDKIT_STEP]) == builderchoice.CLASSIC  # the newest step decides
    assert builderchoice.built_by([IMPORTED_STEP]) is None and builderchoice.built_by([]) is None
    assert builderchoice.build_type(builderchoice.CLASSIC) == "https://dlbase.dev/build/docker-classic/v1"
    assert builderchoice.build_type(builderchoice.BUILDKIT) != builderchoice.build_type(builderchoice.CLASSIC)
    assert builderchoice.build_type(None) == builderchoice.UNKNOWN_BUILD_TYPE
    assert set(builderchoice.BUILD_TYPES) == {builderchoice.BUILDKIT, builderchoice.CLASSIC}


def test_provenance_from_labels_and_files(tmp_path: Path):
    dockerfile = sources.Material("images/v1/Dockerfile", b"FROM x\n")
    prov = predicates.provenance_predicate(labels=LABELS, image_id="sha256:" + "cd" * 32,
                                           created="2026-11-30T08:00:00Z", build_seconds=90,
                                           dockerfile=dockerfile, lock=None,
                                           engine_version={"Version": "20.10.24", "ApiVersion": "1.41"},
                                           build_type=builderchoice.build_type(builderchoice.BUILDKIT))
    assert prov["buildDefinition"]["buildType"] == "https://dlbase.dev/build/buildkit/v1"
    ext = prov["buildDefinition"]["externalParameters"]
    assert ext == {"repository": "https://example.org/dlbase", "commit": "0123456789abcdef", "variant": "v1",
                   "lockHash": "97afa4dbe9f1"}
    deps = {d["name"]: d for d in prov["buildDefinition"]["resolvedDependencies"]}
    assert deps["base image"]["digest"] == {"sha256": "ab" * 32}
    assert deps["rendered Dockerfile"]["digest"] == {"sha256": hashlib.sha256(b"FROM x\n").hexdigest()}
    assert deps["rendered Dockerfile"]["uri"] == "file:images/v1/Dockerfile"
    meta = prov["runDetails"]["metadata"]
    assert meta["finishedOn"] == "2026-11-30T08:00:00Z" and meta["startedOn"] == "2026-11-30T07:58:30+00:00"
    assert prov["runDetails"]["builder"]["version"]["docker"] == "20.10.24"


DEBIAN12 = sources.BuiltFrom(lock=None, dockerfile=None, os_id="debian", os_version="12")


def test_sbom_lists_python_and_debian_packages():
    doc = predicates.sbom_predicate(image_id="sha256:" + "cd" * 32, name="r/x", python={"numpy": "2.2.1"},
                                    debs=[("libc6", "2.36-9+deb12u9", "amd64"), ("libc6", "2.36-9+deb12u9", "amd64")],
                                    built=DEBIAN12, labels=LABELS)
    purls = [c["purl"] for c in doc["components"]]
    assert purls == ["pkg:pypi/numpy@2.2.1", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12"]
    assert doc["bomFormat"] == "CycloneDX"
    assert sbom.deb_purl("a", "1", "all") == "pkg:deb/debian/a@1?arch=all"


def test_suite_hash_changes_with_the_suite(tmp_path: Path):
    (tmp_path / "image").mkdir(parents=True)
    (tmp_path / "image" / "test_a.py").write_text("def test_a(): pass\n")
    first = predicates.suite_hash({"tests/image": tmp_path / "image"})
    assert first["files"] == 1 and first["dirs"] == ["tests/image"]
    (tmp_path / "image" / "test_a.py").write_text("def test_a(): assert 0\n")
    assert predicates.suite_hash({"tests/image": tmp_path / "image"})["sha256"] != first["sha256"]


def test_suite_hash_reads_the_installed_suites_not_a_checkout(tmp_path: Path, monkeypatch):
    """From a folder that is not dlbase's checkout the verification still names its suites."""
    from dlbase import suites

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLBASE_ROOT", str(tmp_path))
    found = predicates.suite_hash()
    files = [p for d in (suites.image_dir(), suites.infra_dir()) for p in d.rglob("*.py")
             if "__pycache__" not in p.parts]
    assert found["dirs"] == ["tests/image", "tests/infra"] and found["files"] >= len(files) > 0


def test_cuda_driver_version_from_nvidia_smi_banner():
    banner = "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |"
    assert hostfacts.cuda_driver_version(run=lambda cmd: (0, banner), which=lambda _n: "/usr/bin/nvidia-smi") == "12.4"
    assert hostfacts.cuda_driver_version(run=lambda cmd: (0, banner), which=lambda _n: None) is None


def test_sbom_purls_carry_the_image_distribution_and_hashes_from_the_image_lock():
    """An Ubuntu 22.04 image's packages are pkg:deb/ubuntu/...&distro=ubuntu-22.04 (as syft
    writes them), and the hashes come from the lock bytes read from the image."""
    release = sources.parse_os_release('PRETTY_NAME="Ubuntu 22.04.5 LTS"\nID=ubuntu\nVERSION_ID="22.04"\n# c\njunk\n')
    assert (release["ID"], release["VERSION_ID"]) == ("ubuntu", "22.04")
    lock = b"numpy==2.2.1 \\\n    --hash=sha256:" + b"aa" * 32 + b"\n"
    built = sources.BuiltFrom(lock=sources.Material("images/v1/requirements.lock", lock), dockerfile=None,
                              os_id=release["ID"], os_version=release["VERSION_ID"])
    doc = predicates.sbom_predicate(image_id="sha256:" + "cd" * 32, name="r/x", python={"numpy": "2.2.1"},
                                    debs=[("libc6", "2.35-0ubuntu3.8", "amd64")], built=built, labels=LABELS)
    by_name = {c["name"]: c for c in doc["components"]}
    assert by_name["libc6"]["purl"] == "pkg:deb/ubuntu/libc6@2.35-0ubuntu3.8?arch=amd64&distro=ubuntu-22.04"
    assert by_name["numpy"]["hashes"] == [{"alg": "SHA-256", "content": "aa" * 32}]
    unknown = sources.BuiltFrom(lock=None, dockerfile=None, os_id=None, os_version=None)
    doc = predicates.sbom_predicate(image_id="sha256:" + "cd" * 32, name="r/x", python={}, built=unknown,
                                    debs=[("libc6", "1", "amd64")], labels=LABELS)
    assert doc["components"][0]["purl"] == "pkg:deb/debian/libc6@1?arch=amd64"  # no distro claimed


def test_dockerfile_comes_from_the_commit_the_image_names(tmp_path: Path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})

    (tmp_path / "images" / "v1").mkdir(parents=True)
    (tmp_path / "images" / "v1" / "Dockerfile").write_text("FROM built\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "built")
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / "images" / "v1" / "Dockerfile").write_text("FROM re-rendered-since\n")  # the checkout moved on
    found = sources.dockerfile_at(tmp_path, rev, "v1")
    assert found is not None and found.content == b"FROM built\n" and found.uri == "images/v1/Dockerfile"
    assert sources.dockerfile_at(tmp_path, rev + "-dirty", "v1") is None  # unknowable, so none
    assert sources.dockerfile_at(tmp_path, "0" * 40, "v1") is None
    assert sources.dockerfile_at(tmp_path, rev, "other") is None


def test_verification_is_a_test_result_with_dlbase_facts_and_both_types_read():
    suites = {"tests/infra": {"sha256": "11" * 32, "files": 3},
              "/opt/dlbase/tests": {"sha256": "22" * 32, "files": 9}}
    host = {"label": "gpu-a", "gpus": [{"sm": "sm_90"}], "driver": "550.54.15"}
    pred = predicates.verification_predicate(
        passed=True, verified_at="2026-01-01T00:00:00+00:00", counts={"image": {"passed": 2}}, failed_checks=[],
        passed_checks=["cuda", "ddp"], require_gpu=True, partial=False, gpus_used=True, suites=suites, host=host,
        image="r/x@sha256:" + "cd" * 32, source="dlbase verify --attest")
    assert pred["result"] == "pass" and pred["passedTests"] == ["cuda", "ddp"] and pred["failedTests"] == []
    assert pred["configuration"] == [{"name": "/opt/dlbase/tests", "digest": {"sha256": "22" * 32}},
                                     {"name": "tests/infra", "digest": {"sha256": "11" * 32}}]
    assert pred["dlbase"]["host"] == host and pred["dlbase"]["suite"]["dirs"] == sorted(suites)
    view = predicates.verification_view(predicates.VERIFICATION_TYPE, pred)
    assert view["result"] == "passed" and view["host"] == host and view["requireGpu"] is True
    legacy = {"result": "failed", "host": host, "failedChecks": ["x"]}
    assert predicates.verification_view(predicates.LEGACY_VERIFICATION_TYPE, legacy) == legacy
    foreign = {"result": "pass", "configuration": [], "passedTests": ["unit"]}  # another tool's test run
    view = predicates.verification_view(predicates.VERIFICATION_TYPE, foreign)
    assert view["result"] == "passed" and view.get("host") is None  # so no GPU policy is met by it
    failed = predicates.verification_predicate(
        passed=False, verified_at=None, counts={}, failed_checks=["ddp"], require_gpu=False, partial=False,
        gpus_used=False, suites={}, host=None, image="r/x", source="s")
    assert failed["result"] == "fail" and "passedTests" not in failed
    assert predicates.verification_view(predicates.VERIFICATION_TYPE, failed)["failedChecks"] == ["ddp"]


def test_suite_digest_is_the_same_from_checkout_and_image_and_skips_caches():
    files = {"test_a.py": b"a", "sub/test_b.py": b"b"}
    same = {**files, "__pycache__/test_a.cpython-311.pyc": b"x", "sub/x.pyc": b"y"}
    assert predicates.suite_digest(files) == predicates.suite_digest(same)
    assert predicates.suite_digest(files)["files"] == 2
    assert predicates.suite_digest({**files, "test_a.py": b"A"})["sha256"] != predicates.suite_digest(files)["sha256"]


def test_the_sbom_file_is_the_attested_predicate_byte_for_byte_and_passes_the_strict_validator(tmp_path: Path):
    """push writes the SBOM's canonical bytes, which are exactly the bytes the predicate takes
    inside the signed statement; the document passes cyclonedx-python-lib's strict 1.5 validator."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation import json as validation

    from dlbase.trust import statements

    doc = predicates.sbom_predicate(image_id="sha256:" + "cd" * 32, name="127.0.0.1:5000/r/x",
                                    python={"numpy": "2.2.1", "torch": "2.6.0+cu124"},
                                    debs=[("libc6", "2.36-9+deb12u9", "amd64"), ("libstdc++6", "12.2.0-14", "amd64")],
                                    built=DEBIAN12, labels=LABELS)
    path = sbom.write_canonical(tmp_path / "sbom.cdx.json", doc)
    payload = statements.payload_bytes(statements.statement("127.0.0.1:5000/r/x", "sha256:" + "ef" * 32,
                                                            predicates.SBOM_TYPE, doc))
    assert b'"predicate":' + path.read_bytes() + b"," in payload
    assert json.loads(payload)["predicate"] == json.loads(path.read_bytes())
    assert sum(c["purl"].startswith("pkg:deb/debian/") for c in doc["components"]) == 2
    errors = validation.JsonStrictValidator(SchemaVersion.V1_5).validate_str(path.read_text())
    assert errors is None, errors
