"""VEX by purl and one SBOM per image, end to end: a small image built from the project's
templates (tests/support/small_project.py), a real daemon, a real registry on 127.0.0.1.

`push --sign` publishes the repository's VEX (written by variant name in images/vex/) in the
form Trivy and Grype match: the product is the pushed digest's ``pkg:oci`` purl, the
subcomponent the SBOM's purl of apt. The SBOM file push names in its report is the
attested predicate byte for byte, Debian packages included. `dlbase scan` of the pushed
image applies that purl-form document by itself, and not to another digest.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from dlbase.build import builder as build_mod
from dlbase.core import purls
from dlbase.define.spec import BuildSpec
from dlbase.registry.client import RegistryClient
from dlbase.trust import predicates, store
from dlbase.verify import records
from dlbase.vuln.attestation import OPENVEX_TYPE

from tests.support.registry import registry_binary, running_registry
from tests.support.small_project import make_small_project

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed")]
REPO = f"dlbase-test-{uuid.uuid4().hex[:8]}/pytorch"
PASSWORD = "vex-purl-test"
DB = Path(__file__).resolve().parents[1] / "unit" / "data" / "osv"  # the fixture advisories (CVE-2011-3374 on apt)
APT_CVE = "DEBIAN-CVE-2011-3374"


@pytest.fixture(scope="module")
def image(engine, debian_base, session_labels, tmp_path_factory):
    sp = make_small_project(tmp_path_factory.mktemp("sp"), payload="vex-purl")
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    res = build_mod.build(project, spec, engine, tag=False, check_versions=False, extra_labels=session_labels)
    immutable = res.immutable_tag.split(":", 1)[1]
    engine.tag(res.image_id, REPO, immutable)
    # the push gate's local record, written by the test: a small image cannot pass the full verify
    records.record(project, res.image_id, passed=True, require_gpu=False,
                   summary={"simulated": "test_vex_purl: a small image cannot pass the full verify",
                            "counts": {"host": {"passed": 1}, "image": {"passed": 1}}, "failed_checks": [],
                            "partial": False, "gpus": False})
    return {"sp": sp, "image_id": res.image_id, "ref": f"{REPO}:{immutable}", "immutable": immutable}


def dlbase(sp, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLBASE_ROOT": str(sp.root), "DLBASE_SIGNING_PASSWORD": PASSWORD,
           "DOCKER_CONFIG": str(sp.root / ".no-docker-config")}
    for name in ("DLBASE_REGISTRY_USER", "DLBASE_REGISTRY_PASSWORD", "DLBASE_VULN_DB"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=sp.root, env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)


def attested(client: RegistryClient, digest: str) -> dict[str, bytes]:
    """predicate type -> the signed statement's payload bytes (read back from the registry)."""
    att, _ = client.manifest(REPO, store.att_tag(digest))
    return {la["annotations"]["predicateType"]: base64.b64decode(json.loads(client.blob(REPO, la["digest"]))["payload"])
            for la in att["layers"]}


def scan(sp, pinned: str, *args: str) -> dict:
    res = dlbase(sp, "scan", pinned, "--db", str(DB), "--max-db-age", "100000", "--json", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_push_publishes_vex_by_purl_and_the_sbom_file_is_the_attested_one(engine, image, tmp_path):
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
            none = scan(sp, pinned, "--no-vex")
            assert APT_CVE in {f["id"] for f in none["findings"]}
            applied = scan(sp, pinned, "--vex", str(only_purls))
            assert [f["id"] for f in applied["vex"]] == [APT_CVE]
            assert APT_CVE not in {f["id"] for f in applied["findings"]}
            # the same statement about another digest answers nothing here
            other = json.loads(json.dumps(vex_doc))
            other["statements"][0]["products"][0]["@id"] = purls.oci(f"{reg.host}/{REPO}", "sha256:" + "0" * 64)
            (only_purls / "published.json").write_text(json.dumps(other))
            elsewhere = scan(sp, pinned, "--vex", str(only_purls))
            assert elsewhere["vex"] == [] and APT_CVE in {f["id"] for f in elsewhere["findings"]}
        finally:
            if engine.image_exists(pinned):
                engine.remove_image(pinned)
