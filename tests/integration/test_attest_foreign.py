"""`verify REG/REPO@DIGEST --attest` of something dlbase did not build, against a real
loopback registry: a plain Debian image and an artifact (an OCI manifest whose layer is
not a filesystem, as a .sig or .att is).

Before, the plain image was verified against nothing (every dlbase check failed) and a
signed FAILED verification was attached to someone else's image (exit 9); the artifact was
pulled, its container did not start and the daemon's "exec: sleep: not found" came out as
exit 1. Now both are refused before anything runs (exit 2), nothing is attached to the
registry, and what the refused pull added to the daemon is removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dlbase.registry.client import RegistryClient
from dlbase.trust import store
from tests.support.registry import registry_binary, running_registry

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed")]
ROOT = Path(__file__).resolve().parents[2]
REPO = f"dlbase-test-{uuid.uuid4().hex[:8]}/foreign"
PASSWORD = "attest-foreign-test"


def dlbase(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLBASE_SIGNING_PASSWORD": PASSWORD, "DOCKER_CONFIG": str(cwd / ".no-docker-config")}
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_verify_attest_refuses_what_dlbase_did_not_build(engine, debian_base, session_labels, tmp_path):
    made = dlbase("key", "generate", "--role", "verifier", "--label", "test-host", "--out", str(tmp_path / "k"),
                  cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    key = str(tmp_path / "k" / "cosign.key")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {debian_base.ref}\nLABEL dlbase.test-which=foreign\n")
    image_id = engine.build(ctx, labels=session_labels)
    with running_registry(tmp_path / "reg") as reg:
        engine.tag(image_id, f"{reg.host}/{REPO}", "1")
        subprocess.run(["docker", "push", "-q", f"{reg.host}/{REPO}:1"], check=True, capture_output=True)
        engine.untag(f"{reg.host}/{REPO}", "1")
        client = RegistryClient(reg.host)
        digest = client.manifest_digest(REPO, "1")
        blob = b'{"not": "a filesystem"}'
        client.upload_blob(REPO, store.EMPTY_CONFIG)
        client.upload_blob(REPO, blob)
        artifact = client.put_manifest(REPO, "artifact", store.manifest_bytes([store.Layer(blob, "x/y").descriptor()]),
                                       store.OCI_MANIFEST)
        for target in (digest, artifact):
            ref = f"{reg.host}/{REPO}@{target}"
            proc = dlbase("verify", "--json", ref, "--attest", "--key", key, cwd=tmp_path)
            assert proc.returncode == 2, proc.stderr[-2000:]
            doc = json.loads(proc.stdout)
            assert doc["exit_code"] == 2 and "is not an image dlbase built" in doc["message"], doc
            assert "Traceback" not in proc.stderr
            assert client.tag_digest_or_none(REPO, store.att_tag(target)) is None  # nothing attested
            assert not engine.image_exists(ref)  # the refused pull left nothing on the daemon
