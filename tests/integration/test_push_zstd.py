"""`dlbase push --compression zstd` against a real registry (docker-registry on 127.0.0.1),
with a small image built from the project's own templates: the manifest the registry
holds, a `docker pull` of it into the daemon (the containerd image store reads zstd) and
a command run in it, the immutable-tag rules, and a registry that dies mid-push."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from dlbase.engine import Engine
from dlbase.publish import compression
from dlbase.registry.client import RegistryClient
from dlbase.registry import mediatypes
from tests.support.pushing import REPO, Img, build_small_image, push, qualified_tags, remote
from tests.support.registry import running_registry

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def image_z(engine, debian_base, session_labels, tmp_path_factory) -> Img:
    return build_small_image(engine, tmp_path_factory.mktemp("z"), "z", session_labels, verified=True, moving_tag=True)


def test_zstd_push_manifest_pull_and_run(engine: Engine, image_z: Img, tmp_path):
    with running_registry(tmp_path) as reg:
        done = push(image_z, reg.host, "--compression", "zstd", "--json")
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert body["compression"] == "zstd"
        tags = body["tags"]
        digest = tags[image_z.immutable]["digest"]
        assert tags[image_z.moving]["digest"] == digest
        assert digest != image_z.image_id  # another manifest than the daemon's gzip one
        assert remote(reg.host) == {image_z.immutable: digest, image_z.moving: digest}
        assert qualified_tags(engine, reg.host) == []
        assert body["pull_check"]["exit_code"] == 0 and "python 3.11" in body["pull_check"]["output"]

        client = RegistryClient(reg.host)
        manifest, served = client.manifest(REPO, image_z.immutable)
        assert served == digest
        assert manifest["mediaType"] == mediatypes.OCI_MANIFEST
        assert {d["mediaType"] for d in manifest["layers"]} == {compression.ZSTD_LAYER}
        assert manifest["annotations"][compression.SOURCE_ANNOTATION] == image_z.image_id
        assert body["registry_bytes"] == manifest["config"]["size"] + sum(d["size"] for d in manifest["layers"])
        for d in manifest["layers"]:
            assert client.blob_exists(REPO, d["digest"])
        # the config is the image's own: its diff_ids are the daemon's layers (uncompressed digests)
        config = json.loads(client.blob(REPO, manifest["config"]["digest"]))
        assert config["rootfs"]["diff_ids"] == engine.inspect_image(image_z.image_id)["RootFS"]["Layers"]

        # docker pull of the zstd tag itself, then a command in what was pulled
        ref = f"{reg.host}/{REPO}:{image_z.immutable}"
        try:
            pulled = engine.pull(f"{reg.host}/{REPO}", image_z.immutable)
            assert pulled in (digest, image_z.image_id)  # containerd store: the zstd manifest's digest
            ran = subprocess.run(["docker", "run", "--rm", "--network", "none", "-e", "DLBASE_SKIP_PREFLIGHT=1",
                                  "--label", "dlbase.purpose=test-zstd", ref, "python", "-c", "print(6 * 7)"],
                                 capture_output=True, text=True, timeout=300)
            assert ran.returncode == 0 and ran.stdout.strip().endswith("42"), ran.stderr
        finally:
            subprocess.run(["docker", "rmi", ref], capture_output=True, timeout=120)

        # again: nothing to re-compress, nothing changes
        again = push(image_z, reg.host, "--compression", "zstd", "--json")
        assert again.returncode == 0, again.stderr
        again_tags = json.loads(again.stdout)["tags"]
        assert again_tags[image_z.immutable]["action"] == "already present (same image)"
        assert again_tags[image_z.moving]["action"] == "unchanged"
        assert again_tags[image_z.immutable]["layers"] == {}  # nothing re-compressed or uploaded
        # the gzip form would replace the immutable tag's manifest: refused, nothing moves
        gz = push(image_z, reg.host)
        assert gz.returncode == 12, gz.stderr
        assert "already holds this image with zstd layers" in gz.stderr and "Traceback" not in gz.stderr
        assert remote(reg.host) == {image_z.immutable: digest, image_z.moving: digest}
        assert qualified_tags(engine, reg.host) == []


def test_registry_dying_mid_zstd_push_leaves_no_tag(engine: Engine, image_z: Img, tmp_path):
    with running_registry(tmp_path) as reg:
        env = {**os.environ, "DLBASE_ROOT": str(image_z.sp.root), "DOCKER_CONFIG": str(image_z.sp.root / ".none")}
        proc = subprocess.Popen([sys.executable, "-m", "dlbase", "push", image_z.ref, "--registry", reg.host,
                                 "--compression", "zstd"], cwd=image_z.sp.root, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        seen: list[str] = []
        deadline = time.monotonic() + 240
        for line in proc.stderr:
            seen.append(line)
            if ": Pushing " in line or time.monotonic() > deadline:
                break
        assert any(": Pushing " in s for s in seen), "".join(seen)  # a layer upload is under way
        reg.stop()
        _out, err = proc.communicate(timeout=180)
        err = "".join(seen) + err
        assert proc.returncode in (5, 11), err
        assert "error:" in err and "Traceback" not in err
        reg.start()
        assert remote(reg.host) == {}  # blobs first, manifest last: no tag exists
        assert qualified_tags(engine, reg.host) == []
