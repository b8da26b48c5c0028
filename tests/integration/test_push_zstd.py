"""`dlbase push` of a zstd-built image against a real registry (docker-registry on
127.0.0.1), with a small image built from the project's own templates (its line builds
zstd): its own blobs pushed (registry digest == image ID), `--compression gzip`
converting it, a `docker pull` of each and a command run in it, the immutable-tag rules,
and a registry that dies mid-push."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from dlbase.core import layercompression
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


def _pull_and_run(engine: Engine, host: str, tag: str) -> str:
    """`docker pull` of the tag itself, then a command in what was pulled; the pulled ID."""
    ref = f"{host}/{REPO}:{tag}"
    try:
        pulled = engine.pull(f"{host}/{REPO}", tag)
        ran = subprocess.run(["docker", "run", "--rm", "--network", "none", "-e", "DLBASE_SKIP_PREFLIGHT=1",
                              "--label", "dlbase.purpose=test-zstd", ref, "python", "-c", "print(6 * 7)"],
                             capture_output=True, text=True, timeout=300)
        assert ran.returncode == 0 and ran.stdout.strip().endswith("42"), ran.stderr
        return pulled
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True, timeout=120)


def test_a_zstd_built_image_pushes_its_own_blobs(engine: Engine, image_z: Img, tmp_path):
    """The line builds zstd; the push sends those bytes: registry digest == image ID."""
    assert engine.inspect_image(image_z.image_id)["Config"]["Labels"][layercompression.LABEL] == "zstd"
    with running_registry(tmp_path) as reg:
        done = push(image_z, reg.host, "--json")
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert body["compression"] == "zstd"
        tags = body["tags"]
        digest = tags[image_z.immutable]["digest"]
        assert digest == image_z.image_id == tags[image_z.moving]["digest"]  # nothing re-compressed
        assert remote(reg.host) == {image_z.immutable: digest, image_z.moving: digest}
        assert qualified_tags(engine, reg.host) == []
        assert body["pull_check"]["exit_code"] == 0 and "python 3.11" in body["pull_check"]["output"]

        client = RegistryClient(reg.host)
        manifest, served = client.manifest(REPO, image_z.immutable)
        assert served == image_z.image_id
        assert manifest["mediaType"] == mediatypes.OCI_MANIFEST
        assert {d["mediaType"] for d in manifest["layers"]} == {compression.ZSTD_LAYER}
        assert compression.SOURCE_ANNOTATION not in (manifest.get("annotations") or {})
        assert body["registry_bytes"] == manifest["config"]["size"] + sum(d["size"] for d in manifest["layers"])
        assert _pull_and_run(engine, reg.host, image_z.immutable) == image_z.image_id

        # again: nothing changes
        again = push(image_z, reg.host, "--json")
        assert again.returncode == 0, again.stderr
        again_tags = json.loads(again.stdout)["tags"]
        assert again_tags[image_z.moving]["action"] == "unchanged"
        assert again_tags[image_z.immutable]["digest"] == image_z.image_id
        # the gzip form would replace the immutable tag's manifest: refused, nothing moves
        gz = push(image_z, reg.host, "--compression", "gzip")
        assert gz.returncode == 12, gz.stderr
        assert "already holds this image with zstd layers" in gz.stderr and "Traceback" not in gz.stderr
        assert remote(reg.host) == {image_z.immutable: digest, image_z.moving: digest}
        assert qualified_tags(engine, reg.host) == []


def test_gzip_asked_of_a_zstd_image_converts_it(engine: Engine, image_z: Img, tmp_path):
    """--compression gzip (a Docker 20.10 team): gzip layers, the same config (same image)."""
    with running_registry(tmp_path) as reg:
        done = push(image_z, reg.host, "--compression", "gzip", "--json")
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert body["compression"] == "gzip"
        digest = body["tags"][image_z.immutable]["digest"]
        assert digest != image_z.image_id  # another manifest than the daemon's zstd one
        client = RegistryClient(reg.host)
        manifest, served = client.manifest(REPO, image_z.immutable)
        assert served == digest
        assert {d["mediaType"] for d in manifest["layers"]} == {compression.GZIP_LAYER}
        assert manifest["annotations"][compression.SOURCE_ANNOTATION] == image_z.image_id
        config = json.loads(client.blob(REPO, manifest["config"]["digest"]))
        assert config["rootfs"]["diff_ids"] == engine.inspect_image(image_z.image_id)["RootFS"]["Layers"]
        for d in manifest["layers"]:
            assert client.blob(REPO, d["digest"], max_bytes=1 << 30)[:2] == b"\x1f\x8b"
        assert _pull_and_run(engine, reg.host, image_z.immutable) in (digest, image_z.image_id)
        again = push(image_z, reg.host, "--compression", "gzip", "--json")  # nothing re-encoded the second time
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["tags"][image_z.immutable]["layers"] == {}
        assert qualified_tags(engine, reg.host) == []


def test_registry_dying_mid_converting_push_leaves_no_tag(engine: Engine, image_z: Img, tmp_path):
    with running_registry(tmp_path) as reg:
        env = {**os.environ, "DLBASE_ROOT": str(image_z.sp.root), "DOCKER_CONFIG": str(image_z.sp.root / ".none")}
        proc = subprocess.Popen([sys.executable, "-m", "dlbase", "push", image_z.ref, "--registry", reg.host,
                                 "--compression", "gzip"], cwd=image_z.sp.root, env=env,
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


def test_a_gzip_fallback_beside_zstd_and_what_docker_26_pulls(engine: Engine, image_z: Img, tmp_path):
    """--gzip-fallback: TAG keeps the zstd image as built, TAG-gzip holds its gzip form; a
    Docker 26 pull of each gets the one it names (a tag, not an index: unambiguous)."""
    with running_registry(tmp_path) as reg:
        done = push(image_z, reg.host, "--gzip-fallback", "--json")
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert body["tags"][image_z.immutable]["digest"] == image_z.image_id  # the main tag: as built
        fb = body["gzip_fallback"]
        fb_tags = {f"{image_z.immutable}-gzip", f"{image_z.moving}-gzip"}
        assert set(fb["tags"]) == fb_tags and fb["pull_check"]["exit_code"] == 0
        assert remote(reg.host) == {image_z.immutable: image_z.image_id, image_z.moving: image_z.image_id,
                                    **{t: fb["digest"] for t in fb_tags}}
        client = RegistryClient(reg.host)
        main_manifest, _d = client.manifest(REPO, image_z.moving)
        fb_manifest, _d = client.manifest(REPO, f"{image_z.moving}-gzip")
        assert {d["mediaType"] for d in main_manifest["layers"]} == {compression.ZSTD_LAYER}
        assert {d["mediaType"] for d in fb_manifest["layers"]} == {compression.GZIP_LAYER}
        assert fb_manifest["config"]["digest"] == main_manifest["config"]["digest"]  # one image, two encodings
        # what Docker 26 (containerd store: the image ID is the manifest digest) pulls for each name
        assert _pull_and_run(engine, reg.host, image_z.moving) == image_z.image_id
        assert _pull_and_run(engine, reg.host, f"{image_z.moving}-gzip") == fb["digest"]
        again = push(image_z, reg.host, "--gzip-fallback", "--json")  # nothing re-encoded or moved
        assert again.returncode == 0, again.stderr
        again_fb = json.loads(again.stdout)["gzip_fallback"]
        assert again_fb["digest"] == fb["digest"] and again_fb["tags"][f"{image_z.immutable}-gzip"]["layers"] == {}
        refused = push(image_z, reg.host, "--gzip-fallback", "--compression", "gzip")
        assert refused.returncode == 2 and "--gzip-fallback goes with a zstd push" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert qualified_tags(engine, reg.host) == []
