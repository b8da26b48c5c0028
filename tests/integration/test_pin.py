"""`dlbase pin` against a real registry on 127.0.0.1 (Debian's docker-registry)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.registry import registry_binary, running_registry

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(registry_binary() is None and os.environ.get("DLBASE_REQUIRE_DOCKER") != "1",
                                reason="docker-registry is not installed (tools/host/setup.sh installs it)")


def _project(tmp: Path, host: str) -> Path:
    """A copy of the project whose cu124 ubuntu base lives in the test registry."""
    proj = tmp / "proj"
    for name in ("images", "templates"):
        shutil.copytree(ROOT / name, proj / name)
    shutil.copy(ROOT / "README.md", proj / "README.md")
    matrix = proj / "images" / "matrix.yaml"
    text = matrix.read_text()
    assert "image: docker.io/nvidia/cuda\n    tag: 12.4.1-base-ubuntu22.04" in text
    text = text.replace("image: docker.io/nvidia/cuda\n    tag: 12.4.1-base-ubuntu22.04",
                        f"image: {host}/nvidia/cuda\n    tag: 12.4.1-base-ubuntu22.04")
    matrix.write_text(text)
    return proj


def _dlbase(proj: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=proj, capture_output=True, text=True,
                          env={**os.environ, "DLBASE_ROOT": str(proj), **(env or {})}, timeout=120)


def test_pin_writes_the_registry_digest_into_the_matrix_and_rerenders(tmp_path: Path) -> None:
    with running_registry(tmp_path) as reg:
        digest = reg.push_manifest("nvidia/cuda", "12.4.1-base-ubuntu22.04")
        proj = _project(tmp_path, reg.host)
        before = _dlbase(proj, "check", "--variant", "torch2.6-cu124-runtime-ubuntu22.04")
        assert "not pinned" in before.stderr
        res = _dlbase(proj, "pin", "cuda12.4-base-ubuntu22.04", "--json")
        assert res.returncode == 0, res.stderr
        matrix = (proj / "images" / "matrix.yaml").read_text()
        assert f"digest: {digest}" in matrix
        assert "# What dlbase builds." in matrix, "comments of the matrix must survive pinning"
        dockerfile = (proj / "images" / "torch2.6-cu124-runtime-ubuntu22.04" / "Dockerfile").read_text()
        assert f"FROM {reg.host}/nvidia/cuda:12.4.1-base-ubuntu22.04@{digest}" in dockerfile
        after = _dlbase(proj, "check", "--variant", "torch2.6-cu124-runtime-ubuntu22.04")
        assert after.returncode == 0 and "not pinned" not in after.stderr
        # Moving the tag in the registry and pinning again updates the digest.
        moved = reg.push_manifest("nvidia/cuda", "12.4.1-base-ubuntu22.04", payload=b"a newer base")
        res = _dlbase(proj, "pin", "cuda12.4-base-ubuntu22.04")
        assert res.returncode == 0, res.stderr
        assert "updated" in res.stdout
        assert f"digest: {moved}" in (proj / "images" / "matrix.yaml").read_text()


def test_pin_with_htpasswd_auth_uses_credentials_from_the_environment(tmp_path: Path) -> None:
    with running_registry(tmp_path, auth=("ci", "s3cret-pw")) as reg:
        digest = reg.push_manifest("nvidia/cuda", "12.4.1-base-ubuntu22.04")
        proj = _project(tmp_path, reg.host)
        denied = _dlbase(proj, "pin", "cuda12.4-base-ubuntu22.04",
                         env={"DOCKER_CONFIG": str(tmp_path / "nocfg")})
        assert denied.returncode == 5 and "401" in denied.stdout + denied.stderr
        assert "digest: null" in (proj / "images" / "matrix.yaml").read_text().split("cuda12.4-base")[1][:400]
        ok = _dlbase(proj, "pin", "cuda12.4-base-ubuntu22.04",
                     env={"DLBASE_REGISTRY_USER": "ci", "DLBASE_REGISTRY_PASSWORD": "s3cret-pw"})
        assert ok.returncode == 0, ok.stderr
        assert f"digest: {digest}" in (proj / "images" / "matrix.yaml").read_text()
        assert "s3cret-pw" not in ok.stdout + ok.stderr


def test_pin_with_registry_down_leaves_the_matrix_unchanged_and_exits_5(tmp_path: Path) -> None:
    from tests.support.registry import free_port

    proj = _project(tmp_path, f"127.0.0.1:{free_port()}")
    before = (proj / "images" / "matrix.yaml").read_bytes()
    res = _dlbase(proj, "pin", "cuda12.4-base-ubuntu22.04")
    assert res.returncode == 5
    assert "cannot be reached" in res.stdout + res.stderr
    assert (proj / "images" / "matrix.yaml").read_bytes() == before
