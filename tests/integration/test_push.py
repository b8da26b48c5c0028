"""`dlbase push` against a real registry (Debian's docker-registry on 127.0.0.1), through
the CLI, with small images built from the project's own templates (tests/support/
small_project.py) and, once (slow), the real default image.

Every fault test checks the same four things: one clear message, its own exit code, no
registry-qualified tag left on the daemon, and nothing already published changed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from dlbase.verify import records
from dlbase.registry.client import RegistryClient

from tests.support.pushing import REPO, Img, build_small_image, no_test_containers, push, qualified_tags, remote
from tests.support.registry import free_port, running_registry

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def image_a(engine, debian_base, session_labels, tmp_path_factory) -> Img:
    return build_small_image(engine, tmp_path_factory.mktemp("a"), "a", session_labels, verified=True, moving_tag=True)


@pytest.fixture(scope="module")
def image_b(engine, debian_base, session_labels, tmp_path_factory) -> Img:
    # The classic builder's image: the daemon compresses its layers while it pushes them, so a
    # push shows "Pushing" progress long enough to be interrupted (test_ctrl_c_during_push); a
    # BuildKit image's few-KB own layers go up compressed before the first progress line.
    return build_small_image(engine, tmp_path_factory.mktemp("b"), "b", session_labels, verified=True, builder="classic")


@pytest.fixture(scope="module")
def image_unverified(engine, debian_base, session_labels, tmp_path_factory) -> Img:
    return build_small_image(engine, tmp_path_factory.mktemp("u"), "u", session_labels, verified=False)


# ------------------------------------------------------------------------------------ happy paths


def test_push_publishes_both_tags_reads_back_and_pulls(engine, image_a, image_b, tmp_path):
    with running_registry(tmp_path) as reg:
        first = push(image_a, reg.host, "--json")
        assert first.returncode == 0, first.stderr
        body = json.loads(first.stdout)
        tags = body["tags"]
        assert set(tags) == {image_a.immutable, image_a.moving}
        assert tags[image_a.immutable]["action"] == "created"
        held = remote(reg.host)
        assert held == {t: tags[t]["digest"] for t in tags}
        assert body["repo_digests"] == [f"{reg.host}/{REPO}@{tags[image_a.immutable]['digest']}"]
        assert body["verification"]["passed"] is True and body["forced"] is False
        assert body["packages"]["dlbase_tiny"] == "1.0" or body["packages"].get("dlbase-tiny") == "1.0"
        assert body["pull_check"]["exit_code"] == 0 and "python 3.11" in body["pull_check"]["output"]
        assert body["credentials"] == "none"
        sbom = json.loads(Path(body["sbom_file"]).read_text())
        assert sbom["specVersion"] == "1.5"
        assert any(c["purl"] == "pkg:pypi/dlbase-tiny@1.0" and c.get("hashes") for c in sbom["components"])
        report = json.loads(Path(body["report_file"]).read_text())
        assert report["image_id"] == image_a.image_id
        assert qualified_tags(engine, reg.host) == []

        # the same image again: the immutable tag is already there and stays
        again = push(image_a, reg.host, "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["tags"][image_a.immutable]["action"] == "already present (same image)"
        assert remote(reg.host) == held

        # a newer image of the same line: the moving tag moves, the report says from where to where
        engine.tag(image_b.image_id, REPO, image_b.moving)
        try:
            moved = push(image_b, reg.host, "--json")
        finally:
            engine.tag(image_a.image_id, REPO, image_a.moving)
        assert moved.returncode == 0, moved.stderr
        mbody = json.loads(moved.stdout)
        assert mbody["moving"]["from"] == held[image_a.moving]
        assert mbody["moving"]["to"] == mbody["tags"][image_b.immutable]["digest"] != held[image_a.moving]
        now = remote(reg.host)
        assert now[image_a.immutable] == held[image_a.immutable]  # published, unchanged
        assert now[image_b.moving] == mbody["tags"][image_b.immutable]["digest"]



def test_push_refuses_unverified_image(engine, image_unverified, tmp_path):
    with running_registry(tmp_path) as reg:
        res = push(image_unverified, reg.host)
        assert res.returncode == 10, res.stderr
        assert "never verified" in res.stderr and "refusing to push" in res.stderr
        assert remote(reg.host) == {}
        assert qualified_tags(engine, reg.host) == []


def test_push_force_pushes_unverified_and_says_so(engine, image_unverified, tmp_path):
    with running_registry(tmp_path) as reg:
        res = push(image_unverified, reg.host, "--force", "--json")
        assert res.returncode == 0, res.stderr
        body = json.loads(res.stdout)
        assert body["forced"] is True and body["verification"]["status"] == "never verified"
        assert "--force" in res.stderr
        assert json.loads(Path(body["report_file"]).read_text())["forced"] is True
        # clean daemon state for real: the image is removed locally, pulled back by digest, run
        digest = body["tags"][image_unverified.immutable]["digest"]
        engine.remove_image(image_unverified.image_id, force=True)
        assert not engine.image_exists(image_unverified.image_id)
        pulled = engine.pull(f"{reg.host}/{REPO}", digest)
        assert pulled == image_unverified.image_id
        ran = engine.run(f"{reg.host}/{REPO}@{digest}", ["python", "-c", "import dlbase_tiny as t; print(t.VALUE)"],
                         network_mode="none", environment={"DLBASE_SKIP_PREFLIGHT": "1"})
        assert ran.ok and ran.output.strip() == "u", ran.output


def test_immutable_tag_pointing_elsewhere_is_never_overwritten(engine, image_a, tmp_path):
    with running_registry(tmp_path) as reg:
        foreign = reg.push_manifest(REPO, image_a.immutable, payload=b"someone else's image")
        before = remote(reg.host)
        res = push(image_a, reg.host)
        assert res.returncode == 12, res.stderr
        assert "already exists and names another image" in res.stderr
        assert remote(reg.host) == before == {image_a.immutable: foreign}
        assert qualified_tags(engine, reg.host) == []


# ------------------------------------------------------------------------------------ credentials


def test_push_with_htpasswd_credentials_from_env_and_config(engine, image_a, tmp_path):
    user, password = "dlbase-ci", f"pw-{uuid.uuid4().hex}"
    with running_registry(tmp_path, auth=(user, password)) as reg:
        wrong = push(image_a, reg.host, env={"DLBASE_REGISTRY_USER": user, "DLBASE_REGISTRY_PASSWORD": "nope"})
        assert wrong.returncode == 11, wrong.stderr
        assert "refused the credentials" in wrong.stderr
        missing = push(image_a, reg.host)
        assert missing.returncode == 11, missing.stderr
        assert remote(reg.host, auth=(user, password)) == {}

        ok = push(image_a, reg.host, "--json", env={"DLBASE_REGISTRY_USER": user, "DLBASE_REGISTRY_PASSWORD": password})
        assert ok.returncode == 0, ok.stderr
        body = json.loads(ok.stdout)
        assert body["credentials"].startswith("environment")
        held = remote(reg.host, auth=(user, password))
        assert set(held) == {image_a.immutable, image_a.moving}

        # the Docker config file works too (what `docker login` writes)
        import base64
        cfg = tmp_path / "docker-config"
        cfg.mkdir()
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        (cfg / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
        via_cfg = push(image_a, reg.host, "--json", env={"DOCKER_CONFIG": str(cfg)})
        assert via_cfg.returncode == 0, via_cfg.stderr
        assert json.loads(via_cfg.stdout)["credentials"] == "docker config"
        assert remote(reg.host, auth=(user, password)) == held

        # the password is in no report, log or output
        for text in (ok.stdout, ok.stderr, via_cfg.stdout, via_cfg.stderr, wrong.stderr):
            assert password not in text and token not in text
        for path in (image_a.sp.root / ".dlbase").rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert password.encode() not in data and token.encode() not in data, path
        assert qualified_tags(engine, reg.host) == []


# ------------------------------------------------------------------------------------ faults


def test_registry_not_running(engine, image_a):
    host = f"127.0.0.1:{free_port()}"
    res = push(image_a, host)
    assert res.returncode == 5, res.stderr
    assert f"registry {host} cannot be reached" in res.stderr
    assert qualified_tags(engine, host) == []


def _push_until_uploading(img: Img, host: str, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "DLBASE_ROOT": str(img.sp.root), "DOCKER_CONFIG": str(img.sp.root / ".none"),
                **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "dlbase", "push", img.ref, "--registry", host],
                            cwd=img.sp.root, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "Pushing" in line or time.monotonic() > deadline:
            break
    assert any("Pushing" in s for s in seen), "".join(seen)
    proc._seen = seen  # type: ignore[attr-defined]
    return proc


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=180)
    return proc.returncode, "".join(proc._seen) + err  # type: ignore[attr-defined]


def test_ctrl_c_during_push(engine, image_a, image_b, tmp_path):
    with running_registry(tmp_path) as reg:
        published = push(image_a, reg.host)
        assert published.returncode == 0, published.stderr
        before = remote(reg.host)
        engine.tag(image_b.image_id, REPO, image_b.moving)
        try:
            proc = _push_until_uploading(image_b, reg.host)
            proc.send_signal(signal.SIGINT)
            code, err = _finish(proc)
        finally:
            engine.tag(image_a.image_id, REPO, image_a.moving)
        assert code == 130, err
        assert "interrupted" in err
        assert remote(reg.host) == before  # no new manifest, nothing moved
        assert qualified_tags(engine, reg.host) == []
        no_test_containers(engine, image_b.image_id)


def test_registry_dies_during_push(engine, image_a, tmp_path):
    with running_registry(tmp_path) as reg:
        proc = _push_until_uploading(image_a, reg.host)
        reg.proc.kill()
        reg.proc.wait(timeout=10)
        code, err = _finish(proc)
    assert code in (5, 11), err
    assert "error:" in err and ("could not be reached" in err or "daemon reported" in err)
    assert qualified_tags(engine, reg.host) == []


def test_read_only_registry_storage_surfaces_the_daemon_error(engine, image_a, image_b, tmp_path):
    with running_registry(tmp_path) as reg:
        assert push(image_a, reg.host).returncode == 0
        before = remote(reg.host)
        subprocess.run(["chattr", "-R", "+i", str(reg.root)], check=True)  # read-only even for root
        try:
            engine.tag(image_b.image_id, REPO, image_b.moving)
            try:
                res = push(image_b, reg.host)
            finally:
                engine.tag(image_a.image_id, REPO, image_a.moving)
            assert remote(reg.host) == before
        finally:
            subprocess.run(["chattr", "-R", "-i", str(reg.root)], check=True)
    assert res.returncode == 11, res.stderr
    assert "the daemon reported" in res.stderr
    assert res.stderr.count("error:") == 1
    assert qualified_tags(engine, reg.host) == []


# ------------------------------------------------------------------------------------ slow: the real image


@pytest.mark.slow
def test_push_the_real_default_image_and_pull_it_back(engine, default_image, tmp_path):
    """The 6 GB default image, once, to a loopback registry; pulled back by digest."""
    project_root = ROOT
    from dlbase.define.project import Project
    project = Project.discover(project_root)
    image_id = default_image["image_id"]
    had_record = records.lookup(project, image_id)
    if not (had_record and had_record.get("passed")):
        records.record(project, image_id, passed=True, summary={"simulated": "test_push slow"})
    try:
        with running_registry(tmp_path) as reg:
            env = {k: v for k, v in os.environ.items() if not k.startswith("DLBASE_REGISTRY_")}
            env["DOCKER_CONFIG"] = str(tmp_path / "none")
            started = time.monotonic()
            res = subprocess.run([sys.executable, "-m", "dlbase", "push", default_image["immutable_tag"], "--registry",
                                  reg.host, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
            assert res.returncode == 0, res.stderr[-3000:]
            body = json.loads(res.stdout)
            print(f"pushed the default image in {time.monotonic() - started:.0f}s")
            assert body["pull_check"]["image_id"] == image_id
            assert body["packages"]["torch"] == "2.6.0"
            client = RegistryClient(reg.host)
            held = {t: client.tag_digest_or_none(body["repository"], t) for t in body["tags"]}
            assert held == {t: v["digest"] for t, v in body["tags"].items()}
            if default_image["builder"]["name"] == "buildkit":
                # The reproducible digest is the published one: the registry holds the
                # manifest BuildKit wrote, byte for byte, so a rebuild can be compared to it.
                assert set(held.values()) == {image_id}, (held, image_id)
            assert qualified_tags(engine, reg.host) == []
    finally:
        if not (had_record and had_record.get("passed")):
            (project.state_dir / "verified" / f"{image_id.split(':')[-1]}.json").unlink(missing_ok=True)
