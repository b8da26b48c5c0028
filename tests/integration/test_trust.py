"""Signatures and attestations on a real registry (Debian's docker-registry on 127.0.0.1),
with keys made here by `dlbase key generate`, checked through the `dlbase trust` CLI.

The first half needs no Docker daemon: the image is a tiny real manifest uploaded
through the registry API (tests/support/registry.py), signed and attested through the
library (`dlbase.trust.evidence.attach`, the code `push --sign` and `verify --attest`
run). Its predicates are small hand-made test documents: these tests are about
signatures, subjects and the registry layout, not about predicate content (which the
docker half below checks on a real image).

Every tamper/fault case checks: one clear message, its own exit code, the registry
consistent (no manifest names a missing blob) and otherwise unchanged.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from dlbase.core.errors import InvalidInput, Unreachable
from dlbase.registry.client import RegistryClient
from dlbase.trust import evidence, keys, predicates, statements, store

from tests.support.registry import registry_binary, running_registry

ROOT = Path(__file__).resolve().parents[2]
REPO = "team/pytorch"
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed")


def dlbase(*args: str, env: dict | None = None, cwd: Path = ROOT, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    full = {**os.environ, "DLBASE_SIGNING_PASSWORD": PASSWORD, "DOCKER_CONFIG": "/nonexistent-docker-config"}
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=120, stdin=stdin)


@pytest.fixture(scope="module")
def keydir(tmp_path_factory) -> Path:
    """Key pairs made by the CLI: `team` (the publisher's), `other`, and `h200` (a GPU
    fleet's verifier key, made with --role verifier)."""
    base = tmp_path_factory.mktemp("keys")
    for name in ("team", "other"):
        res = dlbase("key", "generate", "--out", str(base / name), "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["public_key"].endswith("cosign.pub")
    res = dlbase("key", "generate", "--out", str(base / "h200"), "--role", "verifier", "--label", "h200-fleet",
                 "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["role"] == "verifier"
    return base


def load(keydir: Path, name: str) -> keys.KeyPair:
    return keys.load_private(str(keydir / name / "cosign.key"), PASSWORD.encode())


def verification(label: str, result: str = "passed") -> dict:
    """A small verification predicate (test data) with this host's real facts."""
    return {"result": result, "partial": False, "requireGpu": False, "gpusUsed": False, "verifiedAt": "now",
            "counts": {"image": {"passed": 1}}, "failedChecks": [],
            "host": {"label": label, "gpus": [], "driver": None}}


def snapshot(reg) -> dict[str, str]:
    """Every tag of REPO -> its manifest digest."""
    client = RegistryClient(reg.host)
    return {t: client.manifest_digest(REPO, t) for t in sorted(client.tags(REPO))}


def inconsistencies(reg) -> list[str]:
    """Manifests that name a blob the registry does not have."""
    client = RegistryClient(reg.host)
    problems = []
    for tag in client.tags(REPO):
        manifest, _ = client.manifest(REPO, tag)
        for desc in [manifest.get("config") or {}] + list(manifest.get("layers") or []):
            if desc.get("digest") and not client.blob_exists(REPO, desc["digest"]):
                problems.append(f"{tag} names missing blob {desc['digest']}")
    return problems


def publish(reg, keydir: Path, tag: str = "v1", payload: bytes = b"layer", key: str = "team",
            labels: tuple[str, ...] = ("ci",)) -> evidence.Subject:
    digest = reg.push_manifest(REPO, tag, payload)
    subject = evidence.Subject(reg.host, REPO, digest)
    evidence.attach(RegistryClient(reg.host), subject, load(keydir, key), sign=True, tags=(tag,),
                    attestations=[(predicates.VERIFICATION_TYPE, verification(label)) for label in labels])
    return subject


def trust(reg, keydir: Path, ref: str, *extra: str, key: str = "team") -> subprocess.CompletedProcess:
    return dlbase("trust", ref, "--key", str(keydir / key / "cosign.pub"), *extra)


def one_error(res: subprocess.CompletedProcess) -> str:
    """The single `error:` line (no traceback)."""
    assert "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


# ------------------------------------------------------------------------------------ keys


def test_key_generate_refuses_overwrite_and_needs_a_passphrase(keydir, tmp_path):
    before = (keydir / "team" / "cosign.key").read_bytes()
    res = dlbase("key", "generate", "--out", str(keydir / "team"))
    assert res.returncode == 2 and "already exists" in one_error(res)
    assert (keydir / "team" / "cosign.key").read_bytes() == before
    res = dlbase("key", "generate", "--out", str(tmp_path / "k"), env={"DLBASE_SIGNING_PASSWORD": None})
    assert res.returncode == 2 and "no passphrase" in one_error(res)
    assert not (tmp_path / "k" / "cosign.key").exists()
    assert oct((keydir / "team" / "cosign.key").stat().st_mode & 0o777) == "0o600"
    res = dlbase("key", "generate", "--out", str(tmp_path / "v"), "--role", "verifier")
    assert res.returncode == 2 and "--role verifier needs --label" in one_error(res)
    assert not (tmp_path / "v").exists()


def test_a_verifier_key_prints_the_policy_entry_to_send(tmp_path):
    res = dlbase("key", "generate", "--out", str(tmp_path / "v"), "--role", "verifier", "--label", "h200-fleet")
    assert res.returncode == 0, res.stderr
    assert "send " + str(tmp_path / "v" / "cosign.pub") in " ".join(res.stderr.split())
    entry = res.stdout[res.stdout.index("verifiers:"):]
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"publishers:\n  - key: {tmp_path / 'v' / 'cosign.pub'}\n" + entry)
    from dlbase.trust import policyfile

    loaded = policyfile.load(policy)
    assert [k.label_for("verifier") for k in loaded.of_role("verifier")] == ["h200-fleet"]


def test_key_in_environment_and_wrong_passphrase(keydir):
    pem = (keydir / "team" / "cosign.key").read_text()
    os.environ["DLBASE_TEST_KEY"] = pem
    try:
        assert keys.public_pem(keys.load_private("env://DLBASE_TEST_KEY", PASSWORD.encode())) == \
            (keydir / "team" / "cosign.pub").read_bytes()
        assert "DLBASE_TEST_KEY" not in os.environ  # a private key leaves the environment once read
    finally:
        os.environ.pop("DLBASE_TEST_KEY", None)
    with pytest.raises(InvalidInput, match="wrong passphrase"):
        keys.load_private(str(keydir / "team" / "cosign.key"), b"nope")


# ------------------------------------------------------------------------------------ happy path


def test_signed_image_is_trusted_by_tag_and_digest(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir, labels=("ci", "gpu-a"))
        res = trust(reg, keydir, f"{reg.host}/{REPO}:v1", "--json")
        assert res.returncode == 0, res.stderr
        body = json.loads(res.stdout)
        assert body["digest"] == subject.digest and body["tag"] == "v1"
        assert body["pinned"] == subject.reference
        assert sorted(v["host_label"] for v in body["verifications"]) == ["ci", "gpu-a"]
        table = trust(reg, keydir, subject.reference)
        assert table.returncode == 0, table.stderr
        assert "signature" in table.stdout and "verification: gpu-a" in table.stdout
        # the layout cosign reads: .sig / .att manifests with the right media types
        client = RegistryClient(reg.host)
        sig, _ = client.manifest(REPO, store.sig_tag(subject.digest))
        assert sig["layers"][0]["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
        assert sig["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        att, _ = client.manifest(REPO, store.att_tag(subject.digest))
        assert [la["mediaType"] for la in att["layers"]] == ["application/vnd.dsse.envelope.v1+json"] * 2
        assert {la["annotations"]["predicateType"] for la in att["layers"]} == {predicates.VERIFICATION_TYPE}
        assert inconsistencies(reg) == []


# ------------------------------------------------------------------------------------ tamper cases


def test_another_image_pushed_under_the_tag_is_unsigned(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        first = publish(reg, keydir)
        second = reg.push_manifest(REPO, "v1", b"an image nobody signed")
        before = snapshot(reg)
        res = trust(reg, keydir, f"{reg.host}/{REPO}:v1")
        assert res.returncode == 16
        assert f"{REPO}@{second} is not signed" in one_error(res)
        assert trust(reg, keydir, first.reference).returncode == 0  # the signed digest still checks
        assert snapshot(reg) == before and inconsistencies(reg) == []


def _replace_att_layer(reg, subject, new_blob: bytes) -> None:
    """Swap the first layer of `.att` for new_blob (blob first, then the manifest)."""
    client = RegistryClient(reg.host)
    manifest, _ = client.manifest(REPO, store.att_tag(subject.digest))
    client.upload_blob(REPO, new_blob)
    layer = store.Layer(new_blob, statements.MEDIA_TYPE, manifest["layers"][0].get("annotations") or {})
    client.put_manifest(REPO, store.att_tag(subject.digest),
                        store.manifest_bytes([layer.descriptor()] + manifest["layers"][1:]), store.OCI_MANIFEST)


def test_edited_attestation_payload_is_a_bad_signature(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir)
        client = RegistryClient(reg.host)
        manifest, _ = client.manifest(REPO, store.att_tag(subject.digest))
        env = json.loads(client.blob(REPO, manifest["layers"][0]["digest"]))
        stmt = json.loads(base64.b64decode(env["payload"]))
        stmt["predicate"]["host"]["gpus"] = [{"name": "NVIDIA H200", "sm": "sm_90"}]  # a lie
        env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
        _replace_att_layer(reg, subject, json.dumps(env).encode())
        before = snapshot(reg)
        res = trust(reg, keydir, f"{reg.host}/{REPO}:v1")
        assert res.returncode == 17
        assert "signature does not verify with the key given" in one_error(res)
        assert snapshot(reg) == before and inconsistencies(reg) == []


def test_signed_with_another_key_is_a_bad_signature(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        publish(reg, keydir, key="other")
        before = snapshot(reg)
        res = trust(reg, keydir, f"{reg.host}/{REPO}:v1", "--json")
        assert res.returncode == 17
        msg = one_error(res)
        assert "no image signature verifies with a publisher key" in msg
        assert keys.fingerprint(load(keydir, "other").public) in msg  # who did sign it
        body = json.loads(res.stdout)  # one JSON document, even on failure
        assert body["ok"] is False and body["exit_code"] == 17
        assert snapshot(reg) == before


def test_deleted_signature_is_unsigned(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir)
        client = RegistryClient(reg.host)
        sig_digest = client.manifest_digest(REPO, store.sig_tag(subject.digest))
        assert requests.delete(f"http://{reg.host}/v2/{REPO}/manifests/{sig_digest}", timeout=10).status_code == 202
        before = snapshot(reg)
        res = trust(reg, keydir, f"{reg.host}/{REPO}:v1")
        assert res.returncode == 16 and "is not signed" in one_error(res)
        assert snapshot(reg) == before and inconsistencies(reg) == []


def test_attestation_of_another_digest_copied_over_is_wrong_subject(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        target = publish(reg, keydir, "v1", b"image one")
        donor = publish(reg, keydir, "v2", b"image two", labels=("gpu-host",))
        client = RegistryClient(reg.host)
        donor_att, _ = client.manifest(REPO, store.att_tag(donor.digest))
        blob = client.blob(REPO, donor_att["layers"][0]["digest"])
        st = store.ArtifactStore(client, REPO)
        st.append(store.att_tag(target.digest), [store.Layer(blob, statements.MEDIA_TYPE,
                                                             donor_att["layers"][0]["annotations"])])
        before = snapshot(reg)
        res = trust(reg, keydir, f"{reg.host}/{REPO}:v1")
        assert res.returncode == 18
        msg = one_error(res)
        assert f"names {donor.digest}" in msg and f"not {target.digest}" in msg
        assert trust(reg, keydir, f"{reg.host}/{REPO}:v2").returncode == 0
        assert snapshot(reg) == before and inconsistencies(reg) == []


def test_policy_not_met_without_a_gpu_verification(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        publish(reg, keydir)
        ref = f"{reg.host}/{REPO}:v1"
        assert trust(reg, keydir, ref).returncode == 0
        for flags in (["--require-gpu-verified"], ["--gpu-arch", "sm_90"], ["--min-driver", "550"]):
            res = trust(reg, keydir, ref, *flags)
            assert res.returncode == 19, (flags, res.stderr)
            assert "no verification meets the policy" in one_error(res)
        res = trust(reg, keydir, ref, "--gpu-arch", "hopper")
        assert res.returncode == 2 and "sm_90" in one_error(res)


# ------------------------------------------------------------------------------------ faults


def test_registry_down_while_attaching_leaves_it_unchanged(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir)
        before = snapshot(reg)
        steps = []

        def cut(step: str) -> None:
            steps.append(step)
            if step.startswith("manifest"):  # blobs are up, no manifest written yet
                reg.stop()

        with pytest.raises(Unreachable, match="cannot be reached"):
            evidence.attach(RegistryClient(reg.host), subject, load(keydir, "team"), sign=False,
                            attestations=[(predicates.VERIFICATION_TYPE, verification("late-host"))], on_step=cut)
        assert steps[-1].startswith("manifest")
        reg.start()
        assert snapshot(reg) == before
        assert inconsistencies(reg) == []
        body = json.loads(trust(reg, keydir, subject.reference, "--json").stdout)
        assert [v["host_label"] for v in body["verifications"]] == ["ci"]


def test_registry_down_before_the_aggregate_tag_keeps_a_complete_attestation(keydir, tmp_path):
    """Cut between the per-attestation tag and `.att`: what is there is complete and
    signed; dlbase trust sees it (union), and the next append folds it into `.att`."""
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir)

        def cut(step: str) -> None:
            if step == f"manifest {store.att_tag(subject.digest)}":
                reg.stop()

        with pytest.raises(Unreachable):
            evidence.attach(RegistryClient(reg.host), subject, load(keydir, "team"), sign=False,
                            attestations=[(predicates.VERIFICATION_TYPE, verification("late-host"))], on_step=cut)
        reg.start()
        assert inconsistencies(reg) == []
        body = json.loads(trust(reg, keydir, subject.reference, "--json").stdout)
        assert sorted(v["host_label"] for v in body["verifications"]) == ["ci", "late-host"]
        evidence.attach(RegistryClient(reg.host), subject, load(keydir, "team"), sign=False,
                        attestations=[(predicates.VERIFICATION_TYPE, verification("next-host"))])
        att, _ = RegistryClient(reg.host).manifest(REPO, store.att_tag(subject.digest))
        assert len(att["layers"]) == 3  # cosign's view now holds all three


def test_two_hosts_attesting_at_once_both_end_up_in_the_list(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir)
        pair = load(keydir, "team")
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []
        steps: list[str] = []

        def host(label: str) -> None:
            try:
                barrier.wait()
                evidence.attach(RegistryClient(reg.host), subject, pair, sign=False,
                                attestations=[(predicates.VERIFICATION_TYPE, verification(label))],
                                on_step=steps.append)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=host, args=(f"gpu-{i}",)) for i in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        # cosign's view: the aggregate .att tag holds all three envelopes
        att, _ = RegistryClient(reg.host).manifest(REPO, store.att_tag(subject.digest))
        assert len(att["layers"]) == 3, steps
        body = json.loads(trust(reg, keydir, subject.reference, "--json").stdout)
        assert sorted(v["host_label"] for v in body["verifications"]) == ["ci", "gpu-1", "gpu-2"]
        assert inconsistencies(reg) == []


def test_signing_again_is_idempotent_and_a_second_key_adds_a_signature(keydir, tmp_path):
    """Rotation: the same key does not pile up signatures; a new key adds its own, and
    `trust` accepts either key (the other key's statements are ignored, not fatal)."""
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir)
        client = RegistryClient(reg.host)
        att_before = client.manifest_digest(REPO, store.att_tag(subject.digest))
        again = evidence.attach(client, subject, load(keydir, "team"), sign=True, tags=("v1",),
                                attestations=[(predicates.VERIFICATION_TYPE, verification("ci"))])
        assert again["signature"]["existing"] is True and again["attestations"][0]["existing"] is True
        assert client.manifest_digest(REPO, store.att_tag(subject.digest)) == att_before
        evidence.attach(client, subject, load(keydir, "other"), sign=True, tags=("v1",), attestations=[])
        sig, _ = client.manifest(REPO, store.sig_tag(subject.digest))
        assert len(sig["layers"]) == 2  # one payload, two signatures
        assert trust(reg, keydir, subject.reference, key="other").returncode == 0  # team's attestation: ignored
        res = dlbase("trust", subject.reference, "--key", str(keydir / "team" / "cosign.pub"),
                     "--key", str(keydir / "other" / "cosign.pub"), "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["ignored"] == []
        assert inconsistencies(reg) == []


def gpu_run(label: str, *, require_gpu: bool, gpus_used: bool) -> dict:
    """A GPU host's verification as `verify --attest` writes it (in-toto test-result, the
    host facts in its ``dlbase`` field), from hand-made host facts: no GPU host here."""
    return predicates.verification_predicate(
        passed=True, verified_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        counts={"image": {"passed": 1}}, failed_checks=[], require_gpu=require_gpu, partial=False,
        gpus_used=gpus_used, suites={"tests/infra": {"sha256": "11" * 32, "files": 1}},
        host={"label": label, "driver": "550.54.15",
              "gpus": [{"name": "NVIDIA H200", "sm": "sm_90", "computeCapability": "9.0"}]},
        image="test", source="dlbase verify --attest")


GPU_RUN = gpu_run("gpu-h200-01", require_gpu=True, gpus_used=True)
# what `verify --attest --no-gpus` on that same sm_90 host writes: the host has the GPU, the run did not use it
NO_GPUS_RUN = gpu_run("gpu-h200-01-no-gpus", require_gpu=False, gpus_used=False)


def write_policy(tmp_path: Path, keydir: Path, require: str = "") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(f"publishers:\n  - label: team\n    key: {keydir / 'team' / 'cosign.pub'}\n"
                    f"verifiers:\n  - label: h200-fleet\n    key: {keydir / 'h200' / 'cosign.pub'}\n"
                    f"  - label: other-fleet\n    key: {keydir / 'other' / 'cosign.pub'}\n" + require)
    return path


def test_policy_met_only_by_a_verifier_key(keydir, tmp_path):
    """The passing side of the policy, with hand-made GPU host records (test data: no GPU
    host is available to these tests; the predicate's shape is the one verify writes).
    The publisher's key attesting "H200 passed" (a CI job holding it) does not count; the
    h200 fleet's verifier key does, but not for a --no-gpus run on the same host."""
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir, labels=())
        evidence.attach(RegistryClient(reg.host), subject, load(keydir, "team"), sign=False,
                        attestations=[(predicates.VERIFICATION_TYPE, verification("cpu-ci")),
                                      (predicates.VERIFICATION_TYPE, GPU_RUN)])
        flags = ("--require-gpu-verified", "--gpu-arch", "sm_90", "--min-driver", "550.54.14")
        res = trust(reg, keydir, subject.reference, *flags)
        assert res.returncode == 19
        assert "the policy names no verifier key" in one_error(res)
        verifier = ("--verifier", f"h200-fleet={keydir / 'h200' / 'cosign.pub'}")
        evidence.attach(RegistryClient(reg.host), subject, load(keydir, "h200"), sign=False,
                        attestations=[(predicates.VERIFICATION_TYPE, NO_GPUS_RUN)])
        res = trust(reg, keydir, subject.reference, "--gpu-arch", "sm_90", *verifier)
        assert res.returncode == 19
        msg = one_error(res)
        assert "gpu-h200-01-no-gpus: GPU checks were not required" in msg
        assert "the GPUs were not used (verify --no-gpus" in msg
        evidence.attach(RegistryClient(reg.host), subject, load(keydir, "h200"), sign=False,
                        attestations=[(predicates.VERIFICATION_TYPE, GPU_RUN)])
        ok = trust(reg, keydir, subject.reference, *flags, *verifier, "--json")
        assert ok.returncode == 0, ok.stderr
        rows = json.loads(ok.stdout)["verifications"]
        h200_fp = keys.fingerprint(load(keydir, "h200").public)
        counting = [(v["host_label"], v["signer"]["fingerprint"]) for v in rows if v["meets_policy"]]
        assert counting == [("gpu-h200-01", h200_fp)]
        by_team = [v for v in rows if v["host_label"] == "gpu-h200-01" and v["signer"]["label"] == "key-1"]
        assert by_team and "not a verifier key of the policy" in by_team[0]["unmet"][0]
        res = trust(reg, keydir, subject.reference, "--gpu-arch", "sm_100", *verifier)
        assert res.returncode == 19 and "no sm_100 GPU (sm_90)" in one_error(res)
        # the same through a policy file: one verifier is enough; two distinct ones are not there
        one = write_policy(tmp_path, keydir, "require:\n  gpu:\n    arch: sm_90\n    max_age: 1w\n")
        assert dlbase("trust", subject.reference, "--policy", str(one)).returncode == 0
        two = write_policy(tmp_path, keydir, "require:\n  gpu:\n    count: 2\n")
        res = dlbase("trust", subject.reference, "--policy", str(two))
        assert res.returncode == 19 and "1 of 2 required verifier key(s)" in one_error(res)
        res = trust(reg, keydir, subject.reference, "--min-driver", "")
        assert res.returncode == 2 and "--min-driver ''" in one_error(res)


def test_verifier_statements_tampered_or_out_of_role(keydir, tmp_path):
    """A verifier's statement edited after signing is tampering for a consumer who lists
    that verifier (17) and merely someone else's statement for one who does not (0,
    ignored). A verifier key signing the image or an SBOM is out of its role: ignored."""
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir, labels=())
        h200 = load(keydir, "h200")
        evidence.attach(RegistryClient(reg.host), subject, h200, sign=True, tags=("v1",),
                        attestations=[(predicates.SBOM_TYPE, {"components": []})])
        res = trust(reg, keydir, subject.reference, "--verifier", f"h200-fleet={keydir / 'h200' / 'cosign.pub'}",
                    "--json")
        assert res.returncode == 0, res.stderr
        ignored = json.loads(res.stdout)["ignored"]
        assert sorted(i["kind"] for i in ignored) == ["attestation", "signature"]
        assert all("h200-fleet" in i["why"] for i in ignored)
        assert json.loads(res.stdout)["sbom"] is None  # a verifier's SBOM is not the build's

        evidence.attach(RegistryClient(reg.host), subject, h200, sign=False,
                        attestations=[(predicates.VERIFICATION_TYPE, GPU_RUN)])
        client = RegistryClient(reg.host)
        manifest, _ = client.manifest(REPO, store.att_tag(subject.digest))
        index = next(i for i, la in enumerate(manifest["layers"])
                     if la["annotations"]["predicateType"] == predicates.VERIFICATION_TYPE)
        env = json.loads(client.blob(REPO, manifest["layers"][index]["digest"]))
        stmt = json.loads(base64.b64decode(env["payload"]))
        stmt["predicate"]["dlbase"]["host"]["driver"] = "999.0"  # a lie
        env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
        blob = json.dumps(env).encode()
        client.upload_blob(REPO, blob)
        layer = store.Layer(blob, statements.MEDIA_TYPE, manifest["layers"][index]["annotations"])
        layers = list(manifest["layers"])
        layers[index] = layer.descriptor()
        for tag in [t for t in client.tags(REPO) if t.startswith(store.att_tag(subject.digest))]:
            client.put_manifest(REPO, tag, store.manifest_bytes(
                [d if d["digest"] != manifest["layers"][index]["digest"] else layer.descriptor()
                 for d in client.manifest(REPO, tag)[0]["layers"]]), store.OCI_MANIFEST)
        before = snapshot(reg)
        res = trust(reg, keydir, subject.reference, "--verifier", f"h200-fleet={keydir / 'h200' / 'cosign.pub'}")
        assert res.returncode == 17
        msg = one_error(res)
        assert "does not verify with the key given that it names (verifier h200-fleet" in msg
        assert "changed after signing" in msg
        res = trust(reg, keydir, subject.reference, "--json")
        assert res.returncode == 0, res.stderr
        assert keys.fingerprint(h200.public) in {i["fingerprint"] for i in json.loads(res.stdout)["ignored"]}
        assert snapshot(reg) == before and inconsistencies(reg) == []


def copy_repository(reg, source: str, target: str) -> None:
    """Every tag of ``source`` (the image, its .sig, .att and per-attestation tags) into
    ``target`` on the same registry, byte for byte: what someone with push rights there does."""
    client = RegistryClient(reg.host)
    accept = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])
    for tag in client.tags(source):
        resp = requests.get(f"{reg.url}/{source}/manifests/{tag}", headers={"Accept": accept}, timeout=10)
        resp.raise_for_status()
        manifest = resp.json()
        for desc in [manifest["config"], *manifest["layers"]]:
            client.upload_blob(target, client.blob(source, desc["digest"]))
        client.put_manifest(target, tag, resp.content, resp.headers["Content-Type"])


def test_copied_into_another_repository_is_refused(keydir, tmp_path):
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir)
        copy_repository(reg, REPO, "evil/pytorch")
        client = RegistryClient(reg.host)
        assert client.manifest_digest("evil/pytorch", "v1") == subject.digest
        before = snapshot(reg)
        res = dlbase("trust", f"{reg.host}/evil/pytorch:v1", "--key", str(keydir / "team" / "cosign.pub"))
        assert res.returncode == 20
        msg = one_error(res)
        assert f"is signed for {reg.host}/{REPO}, not for {reg.host}/evil/pytorch" in msg
        assert "copied from another repository" in msg
        res = dlbase("pull", f"{reg.host}/evil/pytorch@{subject.digest}", "--key",
                     str(keydir / "team" / "cosign.pub"))
        assert res.returncode == 20  # refused before any pull (by digest too)
        # a mirror the consumer trusts: the policy names the origin
        mirror = write_policy(tmp_path, keydir, f"require:\n  repositories:\n    - {reg.host}/{REPO}\n")
        res = dlbase("trust", f"{reg.host}/evil/pytorch:v1", "--policy", str(mirror), "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["signature"]["identity"] == f"{reg.host}/{REPO}"
        assert snapshot(reg) == before and inconsistencies(reg) == []


def test_a_digest_not_signed_for_the_tag_is_refused(keydir, tmp_path):
    """The registry points the moving tag 2.6 at an older signed image that was published
    as 2.5: the digest is signed, but not for the tag asked for."""
    with running_registry(tmp_path) as reg:
        client = RegistryClient(reg.host)
        old = reg.push_manifest(REPO, "2.5-aaaa", b"torch 2.5")
        reg.push_manifest(REPO, "2.5", b"torch 2.5")
        evidence.attach(client, evidence.Subject(reg.host, REPO, old), load(keydir, "team"), sign=True,
                        tags=("2.5-aaaa", "2.5"), attestations=[])
        new = reg.push_manifest(REPO, "2.6-bbbb", b"torch 2.6")
        evidence.attach(client, evidence.Subject(reg.host, REPO, new), load(keydir, "team"), sign=True,
                        tags=("2.6-bbbb", "2.6"), attestations=[])
        reg.push_manifest(REPO, "2.6", b"torch 2.6")
        assert trust(reg, keydir, f"{reg.host}/{REPO}:2.6").returncode == 0
        sig, _ = client.manifest(REPO, store.sig_tag(new))
        assert len(sig["layers"]) == 2  # one signature per tag
        reg.push_manifest(REPO, "2.6", b"torch 2.5")  # the registry now serves the old digest as 2.6
        assert client.manifest_digest(REPO, "2.6") == old
        before = snapshot(reg)
        res = trust(reg, keydir, f"{reg.host}/{REPO}:2.6")
        assert res.returncode == 20
        assert "no publisher signature of it names tag 2.6 (signed for: 2.5, 2.5-aaaa)" in one_error(res)
        assert trust(reg, keydir, f"{reg.host}/{REPO}:2.5").returncode == 0
        assert trust(reg, keydir, f"{reg.host}/{REPO}@{old}").returncode == 0  # by digest: no tag to name
        # NAME:TAG@DIGEST is pinned by its digest (the tag is ignored, as docker does): no tag required
        pinned = trust(reg, keydir, f"{reg.host}/{REPO}:2.6@{old}", "--json")
        assert pinned.returncode == 0 and json.loads(pinned.stdout)["digest"] == old, pinned.stderr
        unsigned_tags = write_policy(tmp_path, keydir, "require:\n  signed_tag: false\n")
        assert dlbase("trust", f"{reg.host}/{REPO}:2.6", "--policy", str(unsigned_tags)).returncode == 0
        assert snapshot(reg) == before and inconsistencies(reg) == []


def test_a_lost_update_of_att_loses_nothing_and_is_repaired(keydir, tmp_path):
    """The worst interleaving, forced: a writer with a stale view overwrites `.att`
    after another host's append finished. The other host's attestation survives under
    its own tag, `trust` still sees it, and the next append puts it back into `.att`."""
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir)
        client = RegistryClient(reg.host)
        stale, _ = client.manifest(REPO, store.att_tag(subject.digest))  # a writer reads .att ...
        evidence.attach(client, subject, load(keydir, "team"), sign=False,
                        attestations=[(predicates.VERIFICATION_TYPE, verification("gpu-b"))])  # ... B appends ...
        env = statements.envelope(load(keydir, "team"), statements.statement(
            subject.name, subject.digest, predicates.VERIFICATION_TYPE, verification("gpu-a")))
        client.upload_blob(REPO, env)
        mine = store.Layer(env, statements.MEDIA_TYPE, {store.PREDICATE_ANNOTATION: predicates.VERIFICATION_TYPE})
        client.put_manifest(REPO, store.att_tag(subject.digest),  # ... and writes its stale list: B is gone
                            store.manifest_bytes(stale["layers"] + [mine.descriptor()]), store.OCI_MANIFEST)
        att, _ = client.manifest(REPO, store.att_tag(subject.digest))
        assert len(att["layers"]) == 2  # ci + gpu-a: gpu-b lost from cosign's view
        body = json.loads(trust(reg, keydir, subject.reference, "--json").stdout)
        assert sorted(v["host_label"] for v in body["verifications"]) == ["ci", "gpu-a", "gpu-b"]
        evidence.attach(client, subject, load(keydir, "team"), sign=False,
                        attestations=[(predicates.VERIFICATION_TYPE, verification("gpu-c"))])
        att, _ = client.manifest(REPO, store.att_tag(subject.digest))
        assert len(att["layers"]) == 4  # repaired: ci, gpu-a, gpu-b, gpu-c
        assert inconsistencies(reg) == []


@pytest.mark.skipif(__import__("shutil").which("skopeo") is None, reason="skopeo is not installed (apt-get install skopeo)")
def test_containers_image_finds_the_signature(keydir, tmp_path):
    """A third-party reader of the layout: Debian's skopeo (containers/image) with
    `use-sigstore-attachments`. Debian disabled sigstore *verification* in it, so the most
    it can show is that it found our `.sig`: its answer for the signed tag changes from
    "no signature exists" to "sigstore disabled"."""
    with running_registry(tmp_path) as reg:
        publish(reg, keydir, "signed", b"one")
        reg.push_manifest(REPO, "unsigned", b"two")
        (tmp_path / "rd").mkdir()
        (tmp_path / "rd" / "default.yaml").write_text(f"docker:\n  {reg.host}:\n    use-sigstore-attachments: true\n")
        policy = {"default": [{"type": "insecureAcceptAnything"}],
                  "transports": {"docker": {f"{reg.host}/{REPO}": [
                      {"type": "sigstoreSigned", "keyPath": str(keydir / "team" / "cosign.pub"),
                       "signedIdentity": {"type": "matchRepository"}}]}}}
        (tmp_path / "policy.json").write_text(json.dumps(policy))
        answers = {}
        for tag in ("signed", "unsigned"):
            res = subprocess.run(["skopeo", "--policy", str(tmp_path / "policy.json"), "--registries.d",
                                  str(tmp_path / "rd"), "copy", "--src-tls-verify=false",
                                  f"docker://{reg.host}/{REPO}:{tag}", f"dir:{tmp_path}/out-{tag}"],
                                 capture_output=True, text=True, timeout=60)
            answers[tag] = (res.returncode, res.stderr)
        assert "no signature exists" in answers["unsigned"][1]
        code, text = answers["signed"]
        assert "no signature exists" not in text
        # Debian's build refuses to verify; a skopeo with sigstore enabled must accept it
        assert "sigstore disabled" in text or code == 0, text


# ------------------------------------------------------------------------------------ roles


def test_a_second_signers_attestation_is_ignored_not_fatal(keydir, tmp_path):
    """Two signers on one image (the publisher and a second key that also signs and
    attests): each checks with its own key alone and gets 0; the other's statements are
    listed as ignored, with that key's fingerprint."""
    with running_registry(tmp_path) as reg:
        subject = publish(reg, keydir)  # team signs, attests "ci"
        evidence.attach(RegistryClient(reg.host), subject, load(keydir, "other"), sign=True,
                        attestations=[(predicates.VERIFICATION_TYPE, verification("other-host"))])
        team_fp = keys.fingerprint(load(keydir, "team").public)
        other_fp = keys.fingerprint(load(keydir, "other").public)
        for key, mine, theirs, label in (("other", other_fp, team_fp, "other-host"), ("team", team_fp, other_fp, "ci")):
            res = trust(reg, keydir, subject.reference, "--json", key=key)
            assert res.returncode == 0, res.stderr
            body = json.loads(res.stdout)
            assert body["signature"]["key"] == mine
            assert [v["host_label"] for v in body["verifications"]] == [label]
            assert [v["signer"]["fingerprint"] for v in body["verifications"]] == [mine]
            ignored = body["ignored"]
            assert {i["fingerprint"] for i in ignored} == {theirs}
            assert {i["kind"] for i in ignored} == {"signature", "attestation"}
            table = trust(reg, keydir, subject.reference, key=key)
            assert table.returncode == 0 and "ignored" in table.stdout
        assert inconsistencies(reg) == []
