"""dlbase reads what cosign 3 writes: Sigstore bundles, on a real registry (Debian's docker-registry on 127.0.0.1).

cosign 3.1.1 signs and attests in the bundle format by default. Debian's distribution 2.8
has no referrers API, so cosign keeps the bundles in an image index tagged
``sha256-<hex>`` (no suffix), which is the path dlbase must find them by here:

- `cosign sign --key` and `cosign attest --key` with a cosign-generated key: `dlbase trust`
  with a policy naming the key accepts the signature and lists the attestation; with
  another key it refuses (exit 17), never "not signed";
- `cosign sign -a tag=T`: the tag binding of `dlbase trust REF:T` holds for a bundle, and a
  bundle that names no tag is refused by tag (exit 20) as a legacy signature is;
- an image dlbase signed (legacy ``.sig``) AND cosign 3 signed: both are seen.

Signing offline needs a signing config with no services and an empty trusted root
(cosign 3 refuses `--tlog-upload=false`). cosign 3 comes from tools/host/cosign3.sh
(DLBASE_COSIGN3_DIR, default /tmp/cosign3; or DLBASE_COSIGN3 naming the binary); without
it these tests skip, and under DLBASE_REQUIRE_DOCKER=1 (CI) they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from dlbase.registry.client import RegistryClient
from dlbase.trust import bundle, evidence, keys, predicates, referrers

from tests.support import cosign_cli
from tests.support.registry import registry_binary, running_registry

REPO = "team/pytorch"
PASSWORD = "cosign3 passphrase"
REGISTRY_FLAGS = ["--allow-http-registry=true", "--allow-insecure-registry=true"]
REVIEW_TYPE = "https://example.com/attestation/review/v1"  # a type dlbase does not read
REQUIRED = os.environ.get("DLBASE_REQUIRE_DOCKER", "") == "1"

pytestmark = pytest.mark.skipif(registry_binary() is None and not REQUIRED, reason="docker-registry is not installed")


def cosign3_path() -> Path:
    named = os.environ.get("DLBASE_COSIGN3")
    if named:
        return Path(named)
    return Path(os.environ.get("DLBASE_COSIGN3_DIR", "/tmp/cosign3")) / "root" / "usr" / "bin" / "cosign"


@pytest.fixture(scope="module")
def cosign_bin() -> str:
    path = cosign3_path()
    version = subprocess.run([str(path), "version"], capture_output=True, text=True) if path.is_file() else None
    if version is None or version.returncode != 0:
        reason = f"cosign 3 is not at {path} (run tools/host/cosign3.sh, or set DLBASE_COSIGN3)"
        if REQUIRED:
            pytest.fail(f"{reason}; DLBASE_REQUIRE_DOCKER=1 makes this a failure", pytrace=False)
        pytest.skip(reason)
    return str(path)


@pytest.fixture(scope="module")
def home(tmp_path_factory, cosign_bin) -> Path:
    """cosign's HOME (its caches land here), with the offline signing config and trusted root."""
    home = tmp_path_factory.mktemp("cosign3-home")
    res = cosign(cosign_bin, home, "signing-config", "create", "--no-default-fulcio", "--no-default-oidc",
                 "--no-default-rekor", "--no-default-tsa", "--out", str(home / "sc.json"))
    assert res.returncode == 0, res.stderr
    res = cosign(cosign_bin, home, "trusted-root", "create", "--out", str(home / "tr.json"))
    assert res.returncode == 0, res.stderr
    return home


def cosign(cosign_bin: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    return cosign_cli.cosign(cosign_bin, home, PASSWORD, *args)


def offline(home: Path) -> list[str]:
    return ["--signing-config", str(home / "sc.json"), "--trusted-root", str(home / "tr.json"), *REGISTRY_FLAGS, "-y"]


def dlbase(*args: str) -> subprocess.CompletedProcess:
    return cosign_cli.dlbase(PASSWORD, *args)


@pytest.fixture(scope="module")
def keydirs(tmp_path_factory, cosign_bin, home) -> dict[str, Path]:
    """`dlbase` (dlbase key generate), `cosign` (cosign generate-key-pair) and `other` (trusted by nobody)."""
    return cosign_cli.key_pairs(tmp_path_factory.mktemp("keys"), cosign_bin, home, PASSWORD)


def sign(cosign_bin: str, home: Path, key: Path, ref: str, *extra: str) -> None:
    res = cosign(cosign_bin, home, "sign", "--key", str(key), *offline(home), *extra, ref)
    assert res.returncode == 0, res.stderr


def attest(cosign_bin: str, home: Path, key: Path, ref: str, ptype: str, predicate: dict) -> None:
    path = home / f"predicate-{abs(hash(ptype))}.json"
    path.write_text(json.dumps(predicate))
    res = cosign(cosign_bin, home, "attest", "--key", str(key), "--type", ptype, "--predicate", str(path),
                 *offline(home), ref)
    assert res.returncode == 0, res.stderr


def test_dlbase_trusts_cosign3_bundles_found_by_the_fallback_tag(cosign_bin, home, keydirs, tmp_path):
    key, pub = keydirs["cosign"] / "cosign.key", str(keydirs["cosign"] / "cosign.pub")
    with running_registry(tmp_path) as reg:
        digest = reg.push_manifest(REPO, "v1", payload=b"cosign 3 signed")
        ref = f"{reg.host}/{REPO}@{digest}"
        sign(cosign_bin, home, key, ref)
        bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
               "components": [{"type": "library", "name": "numpy", "version": "2.2.1",
                               "purl": "pkg:pypi/numpy@2.2.1"}]}
        attest(cosign_bin, home, key, ref, predicates.SBOM_TYPE, bom)
        attest(cosign_bin, home, key, ref, REVIEW_TYPE, {"reviewer": "alice"})

        # What cosign 3.1.1 wrote: no legacy tags, one index under sha256-<hex> naming bundle manifests.
        client = RegistryClient(reg.host)
        tags = client.tags(REPO)
        assert referrers.fallback_tag(digest) in tags and not any(t.endswith((".sig", ".att")) for t in tags), tags
        assert client.referrers(REPO, digest) is None  # distribution 2.8: no referrers API
        found = referrers.find(client, REPO, digest)
        assert len(found.layers) == 3 and found.ignored == []
        assert {la.media_type for la in found.layers} == {"application/vnd.dev.sigstore.bundle.v0.3+json"}
        parsed = [bundle.parse(la.blob, la.where) for la in found.layers]
        assert {b.hint for b in parsed} == {keys.fingerprint(keys.load_public(pub))}  # the hint is dlbase's fingerprint
        assert sorted(b.kind for b in parsed) == ["attestation", "attestation", "signature"]

        res = dlbase("trust", ref, "--key", pub, "--json")
        assert res.returncode == 0, res.stderr + res.stdout
        body = json.loads(res.stdout)
        assert body["signature"]["format"] == "bundle" and body["signature"]["formats"] == ["bundle"]
        assert body["signature"]["identity"] is None  # cosign 3's sign statement names the digest only
        assert body["signature"]["key"] == keys.fingerprint(keys.load_public(pub))
        assert sorted(body["attestations"]) == sorted([predicates.SBOM_TYPE, REVIEW_TYPE])
        assert body["other_attestations"] == [REVIEW_TYPE]
        assert body["sbom"]["components"] == 1 and body["sbom"]["python"] == 1
        assert body["ignored"] == []

        table = dlbase("trust", ref, "--key", pub)
        assert table.returncode == 0 and "Sigstore bundle" in table.stdout, table.stderr

        wrong = dlbase("trust", ref, "--key", str(keydirs["other"] / "cosign.pub"), "--json")
        assert wrong.returncode == 17, wrong.stderr  # bad signature: another key signed it, not "not signed" (16)
        assert "Traceback" not in wrong.stderr and json.loads(wrong.stdout)["ok"] is False


def test_a_cosign3_tag_annotation_binds_the_tag(cosign_bin, home, keydirs, tmp_path):
    key, pub = keydirs["cosign"] / "cosign.key", str(keydirs["cosign"] / "cosign.pub")
    with running_registry(tmp_path) as reg:
        digest = reg.push_manifest(REPO, "v1", payload=b"cosign 3 tagged")
        reg.push_manifest(REPO, "v2", payload=b"cosign 3 tagged")  # the same digest under a tag never signed
        ref = f"{reg.host}/{REPO}@{digest}"
        sign(cosign_bin, home, key, ref, "-a", "tag=v1")
        res = dlbase("trust", f"{reg.host}/{REPO}:v1", "--key", pub, "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["signature"]["tag"] == "v1"
        other = dlbase("trust", f"{reg.host}/{REPO}:v2", "--key", pub)
        assert other.returncode == 20 and "names tag v2" in other.stderr, other.stderr


def test_an_image_signed_by_dlbase_and_by_cosign3_shows_both(cosign_bin, home, keydirs, tmp_path):
    pair = keys.load_private(str(keydirs["dlbase"] / "cosign.key"), PASSWORD.encode())
    cosign_key, cosign_pub = keydirs["cosign"] / "cosign.key", str(keydirs["cosign"] / "cosign.pub")
    dlbase_pub = str(keydirs["dlbase"] / "cosign.pub")
    with running_registry(tmp_path) as reg:
        digest = reg.push_manifest(REPO, "v1", payload=b"both formats")
        subject = evidence.Subject(reg.host, REPO, digest)
        evidence.attach(RegistryClient(reg.host), subject, pair, sign=True,
                        attestations=[(REVIEW_TYPE, {"reviewer": "dlbase"})])
        sign(cosign_bin, home, cosign_key, subject.reference)
        attest(cosign_bin, home, cosign_key, subject.reference, predicates.SBOM_TYPE,
               {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []})

        both = dlbase("trust", subject.reference, "--key", dlbase_pub, "--key", cosign_pub, "--json")
        assert both.returncode == 0, both.stderr
        body = json.loads(both.stdout)
        assert body["signature"]["formats"] == ["bundle", "legacy"]
        assert sorted(body["attestations"]) == sorted([REVIEW_TYPE, predicates.SBOM_TYPE])
        assert body["ignored"] == []

        # Each key alone: its own signature counts, the other's is listed as ignored, never an error.
        mine = json.loads(dlbase("trust", subject.reference, "--key", dlbase_pub, "--json").stdout)
        assert mine["ok"] and mine["signature"]["format"] == "legacy"
        assert {i["kind"] for i in mine["ignored"]} == {"signature", "attestation"}
        theirs = json.loads(dlbase("trust", subject.reference, "--key", cosign_pub, "--json").stdout)
        assert theirs["ok"] and theirs["signature"]["format"] == "bundle"
        assert theirs["attestations"] == [predicates.SBOM_TYPE]
