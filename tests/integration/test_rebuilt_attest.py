"""The rebuilt-identical evidence end to end: a real small image built by `dlbase build`
from the project's templates (tests/support/small_project.py, with stand-ins for the
stack so the read-back passes and the image is tagged), pushed with `push --sign` to a
real loopback registry, keys made by `dlbase key generate` (publisher, a rebuilder, a
stranger).

The first test gives the attest step (:func:`dlbase.trust.attach.for_rebuild`) the digest
the registry holds as the rebuilt one, with the small image's own dpkg status. Checked
there: the statement is attached and signed for that digest only; a different digest
attaches nothing (exit 13); `dlbase trust --policy` shows it (who, when, which revision)
and a policy can require it, and a statement by a key outside the policy's rebuilders is
ignored; cosign accepts it; the provenance push attached names the same Debian package
versions as the statement. The second runs the verbs in order: `dlbase build`, `push`,
`rebuild-check --attest REF:TAG`, `trust`; the rebuilt digest must be the pushed one.
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
from dlbase.core.errors import ExitCode, NotReproducible
from dlbase.registry.client import RegistryClient
from dlbase.trust import attach, evidence, keys, predicates, rebuilt, store

from tests.support.build_cli import stand_in_stack, steady_port
from tests.support.registry import registry_binary, running_registry
from tests.support.small_project import make_small_project

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed")]
REPO = f"dlbase-test-{uuid.uuid4().hex[:8]}/pytorch"
PASSWORD = "rebuilt-attest-test"
COSIGN_FLAGS = ["--insecure-ignore-tlog=true", "--allow-http-registry=true", "--allow-insecure-registry=true"]
OTHER = "sha256:" + "ee" * 32
PORT_ENV = {"DLBASE_WHEELHOUSE_PORT": str(steady_port())}  # the build's and the rebuild's


@pytest.fixture(scope="module")
def image(engine, debian_base, session_labels, tmp_path_factory):
    """`dlbase build` itself, of the small project with stand-ins for the stack (so the
    read-back passes and the build tags it into REPO), on a wheelhouse port of this module's
    own: the port is a build argument, and the shared default may be another build's."""
    sp = make_small_project(tmp_path_factory.mktemp("sp"), payload="rebuilt")
    stand_in_stack(sp)
    res = dlbase(sp, "build", "--json", "--repository", REPO, *label_args(session_labels), env=PORT_ENV)
    assert res.returncode == 0, res.stderr[-3000:]
    built = json.loads(res.stdout)
    immutable = built["immutable_tag"].split(":", 1)[1]
    assert f"{REPO}:{immutable}" in built["tags"] and built["builder"]["name"] in ("buildkit", "classic")
    return {"sp": sp, "image_id": built["image_id"], "ref": f"{REPO}:{immutable}", "immutable": immutable,
            "builder": built["builder"]["name"], "wheelhouse_port": built.get("wheelhouse_port"), "stderr": res.stderr}


def label_args(session_labels: dict[str, str]) -> list[str]:
    return [arg for k, v in session_labels.items() for arg in ("--label", f"{k}={v}")]


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


def test_the_rebuilt_digest_is_the_pushed_one_and_trust_accepts_its_attestation(engine, image, made, tmp_path,
                                                                            session_labels):
    """The whole flow on real parts: `dlbase build` (the fixture), `dlbase push --sign` to a
    loopback registry, `rebuild-check --attest REF:TAG` (REF resolved once, two no-cache
    rebuilds), then `dlbase trust --policy` requiring a rebuilder's statement. The rebuilt
    digest must be the pushed one: every label and build argument is in the digest, and
    rebuild-check derives them as `dlbase build` does (a build-id label of its own made
    every rebuilt digest differ). The tagged image `dlbase build` made survives the rebuild
    that reproduced it."""
    if image["builder"] != "buildkit":
        pytest.skip("the classic builder gives no reproducible digest (no buildx or no containerd store)")
    sp = image["sp"]
    with running_registry(tmp_path) as reg:
        pushed = dlbase(sp, "push", image["ref"], "--registry", reg.host, "--force",
                        "--sign", made["publisher"]["private_key"], "--json")
        assert pushed.returncode == 0, pushed.stderr
        digest = json.loads(pushed.stdout)["tags"][image["immutable"]]["digest"]
        assert digest == image["image_id"], "push changed the digest `dlbase build` gave"
        ref = f"{reg.host}/{REPO}:{image['immutable']}"
        client = RegistryClient(reg.host)
        before = att_layers(client, digest)
        # --keep: the rebuilt images stay (the session's label removes them) to say where they part
        res = dlbase(sp, "rebuild-check", "--attest", ref, "--key", made["rebuilder"]["private_key"],
                     "--host-label", "second", "--keep", "--json", *label_args(session_labels), env=PORT_ENV)
        body = json.loads(res.stdout)  # one document, whatever the outcome
        print(f"\nBUILT {image['image_id']} (wheelhouse port {image['wheelhouse_port']}), PUSHED {digest}, "
              f"REBUILT {body.get('digests')} (exit {res.returncode}, wheelhouse port {body.get('wheelhouse_port')})")
        if body.get("digests") and body["digests"][0] != digest:
            from dlbase.build.reproduce import diff_layers

            where = diff_layers(engine, digest, body["digests"][0]).to_dict()
            pytest.fail("the rebuild is not the built image:\n" + json.dumps(where, indent=1)[:6000]
                        + "\nbuild's stderr:\n" + image["stderr"][-2000:], pytrace=False)
        assert res.returncode == 0, body.get("message", "") + res.stderr[-2000:]
        assert body["digests"] == [digest, digest] and body["reproducible"] is True
        assert body["attestation"]["rebuilt_digest"] == digest
        assert len(att_layers(client, digest)) == len(before) + 1
        assert engine.image_exists(image["image_id"]) and engine.inspect_image(image["image_id"])["RepoTags"]
        assert set(body["image_ids"]) == {digest}  # --keep kept nothing else: the rebuild is that image

        shown = dlbase(sp, "trust", ref, "--policy", str(policy_file(tmp_path, made, "rebuilder")), "--json")
        assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
        rows = json.loads(shown.stdout)["rebuilds"]
        assert [(r["rebuilt_digest"], r["host_label"], r["meets_policy"]) for r in rows] == [(digest, "second", True)]
        assert rows[0]["revision"] == body["revision"]
