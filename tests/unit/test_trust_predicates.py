"""The predicates as data: provenance from build labels, SBOM with Debian packages,
the suite hash, and the host facts' CUDA driver version parsing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dlbase.trust import sbom
from dlbase.trust import predicates, probes

LABELS = {
    "org.opencontainers.image.source": "https://example.org/dlbase",
    "org.opencontainers.image.revision": "0123456789abcdef",
    "org.opencontainers.image.base.name": "dlbase/debian:12-minbase",
    "org.opencontainers.image.base.digest": "sha256:" + "ab" * 32,
    "dlbase.variant": "v1",
    "dlbase.lock-hash": "97afa4dbe9f1",
}


def test_provenance_from_labels_and_files(tmp_path: Path):
    (tmp_path / "v1").mkdir()
    dockerfile = tmp_path / "v1" / "Dockerfile"
    dockerfile.write_text("FROM x\n")
    prov = predicates.provenance_predicate(labels=LABELS, image_id="sha256:" + "cd" * 32,
                                           created="2026-11-30T08:00:00Z", build_seconds=90,
                                           dockerfile=dockerfile, lock=None,
                                           engine_version={"Version": "20.10.24", "ApiVersion": "1.41"})
    ext = prov["buildDefinition"]["externalParameters"]
    assert ext == {"repository": "https://example.org/dlbase", "commit": "0123456789abcdef", "variant": "v1",
                   "lockHash": "97afa4dbe9f1"}
    deps = {d["name"]: d for d in prov["buildDefinition"]["resolvedDependencies"]}
    assert deps["base image"]["digest"] == {"sha256": "ab" * 32}
    assert deps["rendered Dockerfile"]["digest"] == {"sha256": hashlib.sha256(b"FROM x\n").hexdigest()}
    meta = prov["runDetails"]["metadata"]
    assert meta["finishedOn"] == "2026-11-30T08:00:00Z" and meta["startedOn"] == "2026-11-30T07:58:30+00:00"
    assert prov["runDetails"]["builder"]["version"]["docker"] == "20.10.24"


def test_sbom_lists_python_and_debian_packages():
    doc = predicates.sbom_predicate(image_id="sha256:" + "cd" * 32, name="r/x", python={"numpy": "2.2.1"},
                                    debs=[("libc6", "2.36-9+deb12u9", "amd64"), ("libc6", "2.36-9+deb12u9", "amd64")],
                                    lock_path=None, labels=LABELS)
    purls = [c["purl"] for c in doc["components"]]
    assert purls == ["pkg:pypi/numpy@2.2.1", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12"]
    assert doc["bomFormat"] == "CycloneDX"
    assert sbom.deb_purl("a", "1", "all") == "pkg:deb/debian/a@1?arch=all"


def test_suite_hash_changes_with_the_suite(tmp_path: Path):
    (tmp_path / "tests" / "image").mkdir(parents=True)
    (tmp_path / "tests" / "image" / "test_a.py").write_text("def test_a(): pass\n")
    first = predicates.suite_hash(tmp_path)
    assert first["files"] == 1
    (tmp_path / "tests" / "image" / "test_a.py").write_text("def test_a(): assert 0\n")
    assert predicates.suite_hash(tmp_path)["sha256"] != first["sha256"]


def test_cuda_driver_version_from_nvidia_smi_banner():
    banner = "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |"
    assert probes.cuda_driver_version(run=lambda cmd: (0, banner), which=lambda _n: "/usr/bin/nvidia-smi") == "12.4"
    assert probes.cuda_driver_version(run=lambda cmd: (0, banner), which=lambda _n: None) is None
