"""The second line (torch 2.14 on CUDA 13.0 and Debian 13) on a real daemon: signed and
attested like the default (a small image on its Debian 13 base, fast), and, once per CI
run (slow), its real runtime image built and verified through the CLI, then albumentationsx
tried on top of it offline (the choice no committed variant makes yet).

The slow test is in CI because it fits, built by the same builder `dlbase build` picks
for users (BuildKit where buildx runs, as in CI): BuildKit's cold build of the default
image took 237 s against the classic builder's 357 s (docs/bench-build.md), and this
line's classic build + verify was the suite's slowest test (430 s). The classic builder's
path is proven on small images rendered from the same templates, which is what its code
sees: test_buildkit_build (a classic cold and warm `dlbase build`, read back and tagged),
test_push (a classic image pushed), test_rebuild_check (the classic file-by-file
comparison), test_build_failures (Ctrl-C, SIGTERM and a lost daemon mid-step), test_layers (its
--cache-from). Its wheels share nothing with the default's (Python 3.13 and CUDA 13
wheels against 3.11 and CUDA 12), so its wheelhouse is its own <python>-<platform> folder
of the machine's cache (docs/cache.md).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from packaging.version import Version

from dlbase.build import builder as build_mod
from dlbase.build.wheelhouse import platform_tags_for
from dlbase.define.project import Project
from dlbase.define.spec import LOCK_PLATFORM, BuildSpec
from dlbase.registry.client import RegistryClient
from dlbase.trust import predicates, store
from dlbase.verify import records

from tests.integration.conftest import SESSION_ID
from tests.support.registry import registry_binary, running_registry
from tests.support.small_project import make_small_project

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
REPO = f"dlbase-test-{uuid.uuid4().hex[:8]}/pytorch"
PASSWORD = "second-line-test"


def newest_line_runtime(project: Project) -> str:
    """The runtime variant of the newest torch release on a bootstrapped base: the line
    that builds here beside the default (today torch2.14-cu130-runtime-debian13)."""
    matrix = project.matrix
    candidates = [v for v in matrix.variants if v.flavor.name == "runtime" and v.base.source == "bootstrap"
                  and v.name != matrix.default]
    assert candidates, "the matrix has no second line on a bootstrapped base"
    return max(candidates, key=lambda v: Version(v.torch)).name


def dlbase(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLBASE_ROOT": str(root), "DLBASE_SIGNING_PASSWORD": PASSWORD,
           "DOCKER_CONFIG": str(root / ".no-docker-config")}
    env.pop("DLBASE_REGISTRY_USER", None)
    env.pop("DLBASE_REGISTRY_PASSWORD", None)
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed")
def test_a_debian13_image_is_signed_and_its_sbom_names_debian_13(engine, debian13_base, session_labels, tmp_path):
    """push --sign and trust on the second line's template and base, with a tiny lock: the
    SBOM's Debian purls carry distro=debian-13 read from the image's own os-release, the
    provenance names the image's lock, and trust accepts it with the publisher's key."""
    variant = newest_line_runtime(Project.discover(ROOT))
    sp = make_small_project(tmp_path / "sp", payload="debian13", variant=variant)
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(variant))
    res = build_mod.build(project, spec, engine, tag=False, check_versions=False, extra_labels=session_labels)
    immutable = res.immutable_tag.split(":", 1)[1]
    assert "debian13" in immutable
    engine.tag(res.image_id, REPO, immutable)
    records.record(project, res.image_id, passed=True, require_gpu=False,
                   summary={"simulated": "test_second_line: a small image cannot pass the full verify",
                            "counts": {"host": {"passed": 1}, "image": {"passed": 1}}, "failed_checks": [],
                            "partial": False, "gpus": False})
    keydir = tmp_path / "keys"
    assert dlbase(sp.root, "key", "generate", "--out", str(keydir)).returncode == 0
    with running_registry(tmp_path) as reg:
        pushed = dlbase(sp.root, "push", f"{REPO}:{immutable}", "--registry", reg.host,
                        "--sign", str(keydir / "cosign.key"), "--host-label", "build-host", "--json")
        assert pushed.returncode == 0, pushed.stderr
        body = json.loads(pushed.stdout)
        assert body["signing"]["built_from"]["distro"] == "debian-13"
        digest = body["tags"][immutable]["digest"]

        trusted = dlbase(sp.root, "trust", f"{reg.host}/{REPO}:{immutable}", "--key", str(keydir / "cosign.pub"),
                         "--json")
        assert trusted.returncode == 0, trusted.stderr
        facts = json.loads(trusted.stdout)
        assert facts["digest"] == digest and facts["sbom"]["debian"] > 50

        client = RegistryClient(reg.host)
        att, _ = client.manifest(REPO, store.att_tag(digest))
        statements = {la["annotations"]["predicateType"]:
                      json.loads(base64.b64decode(json.loads(client.blob(REPO, la["digest"]))["payload"]))
                      for la in att["layers"]}
        purls = [c["purl"] for c in statements[predicates.SBOM_TYPE]["predicate"]["components"]]
        debs = [p for p in purls if p.startswith("pkg:deb/")]
        assert debs and all(p.startswith("pkg:deb/debian/") and p.endswith("&distro=debian-13") for p in debs)
        assert any(p.startswith("pkg:deb/debian/python3.13@") for p in debs)  # trixie's Python, from dpkg
        deps = {d["name"] for d in statements[predicates.PROVENANCE_TYPE]["predicate"]["buildDefinition"]
                ["resolvedDependencies"]}
        assert "requirements.lock" in deps


@pytest.mark.slow
def test_the_second_line_runtime_builds_and_verifies(engine, debian13_base, session_labels):
    """The real second-line runtime (6 GB, CUDA 13 wheels), built and verified through the
    CLI once per run, tagged into this session's own repository and removed with it.

    Built by the builder `dlbase build` chooses (``auto``: BuildKit wherever buildx runs),
    the faster one; the classic builder is proven on small images (see the module doc)."""
    project = Project.discover(ROOT)
    variant = newest_line_runtime(project)
    labels = ",".join(f"{k}={v}" for k, v in session_labels.items())
    started = time.monotonic()
    built = subprocess.run([sys.executable, "-m", "dlbase", "build", variant, "--json", "--label", labels,
                            "--repository", f"dlbase-test-{SESSION_ID[:8]}/pytorch"],
                           cwd=ROOT, capture_output=True, text=True, timeout=3000, stdin=subprocess.DEVNULL)
    assert built.returncode == 0, built.stderr[-4000:]
    build_s = time.monotonic() - started
    body = json.loads(built.stdout)
    assert body["builder"]["name"] == engine.choose_builder("auto").name, body["builder"]
    spec = BuildSpec.of(project.compat, project.matrix.get(variant))
    assert (body["probe"]["torch"], body["probe"]["cuda"]) == (spec.variant.torch, spec.line.cuda)
    started = time.monotonic()
    verified = subprocess.run([sys.executable, "-m", "dlbase", "verify", body["image_id"], "--json"],
                              cwd=ROOT, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    assert verified.returncode == 0, (verified.stdout[-3000:], verified.stderr[-3000:])
    print(f"\nSECOND LINE {variant}: build ({body['builder']['name']}) {build_s:.0f}s, verify {time.monotonic() - started:.0f}s")
    albumentationsx_offline_is_silent_and_sends_nothing(engine, project, spec.variant, body["image_id"],
                                                        session_labels)


# A pipeline built and applied offline, with urlopen recorded: what albumentationsx's
# Compose() tries to send, and whether the library prints anything about it.
TELEMETRY_PROBE = """
import sys, time, urllib.request
import numpy as np
calls, real = [], urllib.request.urlopen
def record(req, *a, **k):
    calls.append(getattr(req, "full_url", str(req)))
    return real(req, *a, **k)
urllib.request.urlopen = record
import albumentations as A
A.Compose([A.HorizontalFlip(p=1.0), A.GaussianBlur(p=1.0)])(image=np.zeros((32, 32, 3), np.uint8))
time.sleep(3)  # a telemetry thread, if one started, has finished or failed by now
print("PROBE", A.__version__, calls)
"""


def albumentationsx_offline_is_silent_and_sends_nothing(engine, project: Project, variant, image_id: str,
                                                        session_labels: dict) -> None:
    """The second line's image with albumentationsx in place of albumentations (its wheels
    downloaded from PyPI on the host, a throw-away image) and the env its matrix entry renders: offline,
    Compose() prints nothing and calls no one; without that env it would call Mixpanel."""
    aug = project.matrix.augmentations["albumentationsx"]
    env = dict(aug.env)
    with tempfile.TemporaryDirectory() as ctx:
        # the wheels come from the host, as every dlbase build's do (a build has no index)
        wheels = Path(ctx) / "wheels"
        platforms = [a for tag in platform_tags_for(LOCK_PLATFORM) for a in ("--platform", tag)]
        got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", f"albumentationsx=={aug.version}",
                              "--only-binary=:all:", "--python-version", variant.python, *platforms,
                              "-d", str(wheels)], capture_output=True, text=True, timeout=600)
        assert got.returncode == 0, got.stderr[-2000:]
        (Path(ctx) / "Dockerfile").write_text(
            f"FROM {image_id}\nUSER root\nCOPY wheels /tmp/wheels\n"
            f"RUN /opt/venv/bin/python -m pip uninstall -y -q albumentations && /opt/venv/bin/python -m pip install "
            f"-q --no-index --find-links /tmp/wheels albumentationsx=={aug.version} && rm -rf /tmp/wheels\nUSER 1000\n")
        derived = engine.build(ctx, labels=session_labels)
    quiet = engine.run(derived, ["python", "-c", TELEMETRY_PROBE], environment=env, network_mode="none",
                       shm_size="1g", labels=session_labels, timeout=300)
    assert quiet.ok, quiet.output
    lines = [ln for ln in quiet.output.splitlines() if ln.strip()]
    assert lines == [f"PROBE {aug.version} []"], quiet.output  # nothing printed, nothing sent
    loud = engine.run(derived, ["python", "-c", TELEMETRY_PROBE], network_mode="none", shm_size="1g",
                      labels=session_labels, timeout=300, environment={"CI": ""})
    assert "api.mixpanel.com" in loud.output, loud.output  # what the env switches off
