"""The rebuilt-identical evidence end to end: a real small image built from the project's
templates (tests/support/small_project.py), pushed with `push --sign` to a real loopback
registry, keys made by `dlbase key generate` (publisher, a rebuilder, a stranger).

The attest step (:func:`dlbase.trust.attach.for_rebuild`) is given the digest the
registry holds as the rebuilt one, with the small image's own dpkg status: the digest
comparison and the BuildKit rebuild that yields a digest are ``rebuild-check``'s
(tests/integration/test_rebuild_check.py). Checked here: the statement is attached and
signed for that digest only; a different digest attaches nothing (exit 13); `dlbase
trust --policy` shows it (who, when, which revision) and a policy can require it, and a
statement by a key outside the policy's rebuilders is ignored; cosign accepts it; the
provenance push attached names the same Debian package versions as the statement.
`rebuild-check --attest REF:TAG` itself runs once: it resolves the tag, rebuilds and
attaches only if the rebuilt digest is the published one.

On Docker 26's containerd image store `dlbase push` needs push's identity check to accept
the manifest digest as the image ID (branch zstd, ``publish.push.names_image``); before
that merge these tests stop at the push.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from dlbase.build import builder as build_mod
from dlbase.core.errors import ExitCode, NotReproducible
from dlbase.define.spec import BuildSpec
from dlbase.registry.client import RegistryClient
from dlbase.trust import attach, evidence, keys, predicates, rebuilt, store

from tests.support.registry import registry_binary, running_registry
from tests.support.small_project import make_small_project

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed")]
REPO = f"dlbase-test-{uuid.uuid4().hex[:8]}/pytorch"
PASSWORD = "rebuilt-attest-test"
COSIGN_FLAGS = ["--insecure-ignore-tlog=true", "--allow-http-registry=true", "--allow-insecure-registry=true"]
OTHER = "sha256:" + "ee" * 32


@pytest.fixture(scope="module")
def image(engine, debian_base, session_labels, tmp_path_factory):
    sp = make_small_project(tmp_path_factory.mktemp("sp"), payload="rebuilt")
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    res = build_mod.build(project, spec, engine, tag=False, check_versions=False, extra_labels=session_labels)
    immutable = res.immutable_tag.split(":", 1)[1]
    engine.tag(res.image_id, REPO, immutable)
    return {"sp": sp, "image_id": res.image_id, "ref": f"{REPO}:{immutable}", "immutable": immutable}


def dlbase(sp, *args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    full = {**os.environ, "DLBASE_ROOT": str(sp.root), "DLBASE_SIGNING_PASSWORD": PASSWORD,
            "DOCKER_CONFIG": str(sp.root / ".no-docker-config")}
    for name in ("DLBASE_REGISTRY_USER", "DLBASE_REGISTRY_PASSWORD", "DLBASE_VULN_DB"):
        full.pop(name, None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=sp.root, env=full, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def made(image, tmp_path_factory) -> dict[str, dict]:
    """publisher, rebuilder (label second), stranger: real key pairs from `dlbase key generate`."""
    base = tmp_path_factory.mktemp("keys")
    found = {}
    for name, role in (("publisher", []), ("rebuilder", ["--role", "rebuilder", "--label", "second"]),
                       ("stranger", ["--role", "rebuilder", "--label", "stranger"])):
        res = dlbase(image["sp"], "key", "generate", "--out", str(base / name), *role, "--json")
        assert res.returncode == 0, res.stderr
        found[name] = json.loads(res.stdout)
    return found


def policy_file(tmp_path: Path, made: dict, rebuilder: str, require: str = "true") -> Path:
    path = tmp_path / f"policy-{rebuilder}.yaml"
    path.write_text(f"publishers:\n  - label: release\n    key: {made['publisher']['public_key']}\n"
                    f"rebuilders:\n  - label: {made[rebuilder]['label']}\n    key: {made[rebuilder]['public_key']}\n"
                    f"require:\n  rebuilt_identical: {require}\n")
    return path


def att_layers(client: RegistryClient, digest: str) -> list[dict]:
    manifest, _ = client.manifest(REPO, store.att_tag(digest))
    return manifest["layers"]


def statement_of(client: RegistryClient, layer: dict) -> dict:
    return json.loads(base64.b64decode(json.loads(client.blob(REPO, layer["digest"]))["payload"]))


def cosign_statements(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    home = tmp_path / "cosign-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TUF_ROOT": str(home / "tuf"),
           "DOCKER_CONFIG": str(home / "docker")}
    res = subprocess.run([shutil.which("cosign") or "cosign", "verify-attestation", *args, *COSIGN_FLAGS], env=env,
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    printed = [json.loads(base64.b64decode(json.loads(line)["payload"]))
               for line in res.stdout.splitlines() if line.strip().startswith("{")]
    return res, printed


def test_rebuilt_identical_is_attached_shown_required_and_cosign_reads_it(engine, image, made, tmp_path):
    sp = image["sp"]
    with running_registry(tmp_path) as reg:
        pushed = dlbase(sp, "push", image["ref"], "--registry", reg.host, "--force",
                        "--sign", made["publisher"]["private_key"], "--json")
        assert pushed.returncode == 0, pushed.stderr
        digest = json.loads(pushed.stdout)["tags"][image["immutable"]]["digest"]
        pinned, ref = f"{reg.host}/{REPO}@{digest}", f"{reg.host}/{REPO}:{image['immutable']}"
        client = RegistryClient(reg.host)
        before = att_layers(client, digest)
        labels = engine.inspect_image(image["image_id"])["Config"]["Labels"]
        revision = labels["org.opencontainers.image.revision"]
        subject = evidence.Subject(reg.host, REPO, digest)
        pair = keys.decrypt_private_key(Path(made["rebuilder"]["private_key"]).read_bytes(), PASSWORD.encode(),
                                        "rebuilder key")

        # a rebuild that got another digest: exit 13, nothing attached
        differs = rebuilt.Rebuild(variant=sp.variant, reproducible=True, builds=(OTHER, OTHER),
                                  image_ids=(image["image_id"],), revision=revision, source_date_epoch=1764547200)
        with pytest.raises(NotReproducible) as info:
            attach.for_rebuild(engine, client, subject, pair, differs, host_label="second")
        assert info.value.exit_code == ExitCode.NOT_REPRODUCIBLE and OTHER in info.value.message
        # what moved, against the provenance push stored (the same image here: no package moved)
        assert len(info.value.details) == 1 and "Debian packages are the versions the provenance names" in \
            info.value.details[0], info.value.details
        assert att_layers(client, digest) == before

        # the same digest: one signed statement about it
        same = rebuilt.Rebuild(variant=sp.variant, reproducible=True, builds=(digest, digest),
                               image_ids=(image["image_id"],), revision=revision, source_date_epoch=1764547200,
                               builder={"name": "buildkit"})
        done = attach.for_rebuild(engine, client, subject, pair, same, host_label="second")
        assert [a["predicateType"] for a in done["attestations"]] == [predicates.REBUILT_TYPE]
        assert done["rebuilt_digest"] == digest and done["debian_packages"] > 50
        print(f"\nREBUILT-IDENTICAL COST: {done['seconds']:.2f}s, {done['registry_bytes']} registry bytes, "
              f"envelope {done['attestations'][0]['bytes']} bytes, {done['debian_packages']} Debian packages")
        layers = att_layers(client, digest)
        assert len(layers) == len(before) + 1
        stmt = statement_of(client, layers[-1])
        assert stmt["subject"][0]["digest"] == {"sha256": digest.split(":", 1)[1]}
        body = stmt["predicate"]
        assert body["rebuiltDigest"] == digest and body["source"]["revision"] == revision
        assert body["sourceDateEpoch"] == 1764547200 and body["host"] == {"label": "second"}
        assert body["builder"]["name"] == "buildkit" and body["builder"]["docker"]  # this daemon's version
        # the statement and the publisher's provenance name the same Debian package versions
        prov_layer = next(la for la in layers if la["annotations"]["predicateType"] == predicates.PROVENANCE_TYPE)
        prov = statement_of(client, prov_layer)["predicate"]
        from_prov = predicates.debian_versions(prov["buildDefinition"]["resolvedDependencies"])
        assert from_prov == body["debianPackages"] and "dpkg" in from_prov
        assert any(d["uri"].startswith("pkg:deb/debian/dpkg@") and d["uri"].endswith("&distro=debian-12")
                   for d in prov["buildDefinition"]["resolvedDependencies"])

        # trust shows it and a policy requiring it is met by the rebuilder's key
        policy = policy_file(tmp_path, made, "rebuilder")
        res = dlbase(sp, "trust", ref, "--policy", str(policy), "--json")
        assert res.returncode == 0, res.stderr
        shown = json.loads(res.stdout)
        assert shown["rebuilds"], shown
        row = shown["rebuilds"][0]
        assert row["host_label"] == "second" and row["revision"] == revision and row["meets_policy"] is True
        assert row["rebuilt_digest"] == digest and row["when"] and row["signer"]["roles"] == ["rebuilder"]
        assert "rebuilt-identical statement by a rebuilder key" in shown["policy"]["rules"]
        table = dlbase(sp, "trust", ref, "--policy", str(policy))
        assert table.returncode == 0 and "rebuilt identical: second" in table.stdout, table.stdout
        # a policy whose rebuilder is another key: the statement is ignored and the requirement not met
        strict = dlbase(sp, "trust", ref, "--policy", str(policy_file(tmp_path, made, "stranger")), "--json")
        assert strict.returncode == ExitCode.POLICY, strict.stdout + strict.stderr
        assert "rebuilt-identical requirement is not met" in json.loads(strict.stdout)["message"]
        loose = dlbase(sp, "trust", ref, "--key", made["publisher"]["public_key"], "--json")
        ignored = json.loads(loose.stdout)["ignored"]
        assert any(i["predicateType"] == predicates.REBUILT_TYPE and i["fingerprint"] == made["rebuilder"]["fingerprint"]
                   for i in ignored), ignored
        flags = dlbase(sp, "trust", pinned, "--key", made["publisher"]["public_key"], "--require-rebuilt", "--rebuilder",
                       f"second={made['rebuilder']['public_key']}")
        assert flags.returncode == 0, flags.stderr

        # cosign accepts it under the rebuilder's key, and finds none under the publisher's
        if shutil.which("cosign"):
            res, printed = cosign_statements(tmp_path, "--key", made["rebuilder"]["public_key"],
                                             "--type", predicates.REBUILT_TYPE, pinned)
            assert res.returncode == 0, res.stderr
            assert {s["predicateType"] for s in printed} == {predicates.REBUILT_TYPE}
            assert printed[0]["predicate"]["rebuiltDigest"] == digest
            res, _ = cosign_statements(tmp_path, "--key", made["publisher"]["public_key"],
                                       "--type", predicates.REBUILT_TYPE, pinned)
            assert res.returncode != 0


def test_rebuild_check_attest_resolves_the_tag_and_attaches_only_the_same_digest(engine, image, made, tmp_path,
                                                                                 session_labels):
    """The verb itself: REF:TAG resolved once, two rebuilds, then a statement only when the
    rebuilt digest is the published one; otherwise exit 13 and the .att list unchanged.
    (Which of the two happens depends on the builder: the classic one gives no manifest
    digest; BuildKit's reproducible build gives the published digest.)"""
    sp = image["sp"]
    with running_registry(tmp_path) as reg:
        pushed = dlbase(sp, "push", image["ref"], "--registry", reg.host, "--force",
                        "--sign", made["publisher"]["private_key"], "--json")
        assert pushed.returncode == 0, pushed.stderr
        digest = json.loads(pushed.stdout)["tags"][image["immutable"]]["digest"]
        client = RegistryClient(reg.host)
        before = att_layers(client, digest)
        labels = [arg for k, v in session_labels.items() for arg in ("--label", f"{k}={v}")]
        res = dlbase(sp, "rebuild-check", "--attest", f"{reg.host}/{REPO}:{image['immutable']}",
                     "--key", made["rebuilder"]["private_key"], "--host-label", "second", "--json", *labels)
        body = json.loads(res.stdout)  # one document, whatever the outcome
        after = att_layers(client, digest)
        agreed = rebuilt.Rebuild.from_result(body).digest
        print(f"\nREBUILD-CHECK --attest: exit {res.returncode}, builds {body.get('digests')}, published {digest}")
        if agreed == digest:
            assert res.returncode == 0, res.stderr
            assert body["attestation"]["rebuilt_digest"] == digest and len(after) == len(before) + 1
        else:
            assert res.returncode == ExitCode.NOT_REPRODUCIBLE, res.stdout[-3000:] + res.stderr[-3000:]
            assert "nothing was attested" in body["message"] or not body["reproducible"], body
            assert after == before
        # the rebuilt images are gone again
        for image_id in body["image_ids"]:
            assert not engine.image_exists(image_id) or image_id == image["image_id"]
