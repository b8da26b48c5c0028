"""A small image tagged as `dlbase build` tags one, and `dlbase push` of it through the CLI:
what the push tests (gzip and zstd) share, with the readers of what the registry and the
daemon then hold."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from dlbase.build import builder as build_mod
from dlbase.define.spec import BuildSpec
from dlbase.engine import Engine
from dlbase.registry.client import RegistryClient
from dlbase.verify import records

from tests.support.small_project import SmallProject, make_small_project

#: The repository every push test of a session publishes to (one per session: the
#: immutable-tag tests see what earlier pushes left).
REPO = f"dlbase-test-{uuid.uuid4().hex[:8]}/pytorch"


class Img:
    def __init__(self, sp: SmallProject, image_id: str, immutable: str, moving: str):
        self.sp, self.image_id, self.immutable, self.moving = sp, image_id, immutable, moving

    @property
    def ref(self) -> str:
        return f"{REPO}:{self.immutable}"


def build_small_image(engine: Engine, tmp: Path, payload: str, session_labels: dict, verified: bool,
           moving_tag: bool = False, builder: str = "auto") -> Img:
    """A small image tagged like `dlbase build` would (REPO:immutable); only image_a holds
    the moving tag, tests move it to another image and back."""
    sp = make_small_project(tmp, payload=payload)
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    res = build_mod.build(project, spec, engine, tag=False, check_versions=False, extra_labels=session_labels,
                          builder=builder)
    immutable, moving = res.immutable_tag.split(":", 1)[1], res.moving_tag.split(":", 1)[1]
    engine.tag(res.image_id, REPO, immutable)
    if moving_tag:
        engine.tag(res.image_id, REPO, moving)
    if verified:
        records.record(project, res.image_id, passed=True, summary={"simulated": "test_push"})
    return Img(sp, res.image_id, immutable, moving)


def dlbase_cli(img: Img, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DLBASE_ROOT": str(img.sp.root), **(env or {})}
    for key in ("DLBASE_REGISTRY_USER", "DLBASE_REGISTRY_PASSWORD"):
        if env is None or key not in env:
            full_env.pop(key, None)
    full_env.setdefault("DOCKER_CONFIG", str(img.sp.root / ".no-docker-config"))
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=img.sp.root, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def push(img: Img, host: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return dlbase_cli(img, "push", img.ref, "--registry", host, *extra, env=env)


def qualified_tags(engine: Engine, host: str) -> list[str]:
    """Local tags naming the test registry: the push must never leave any behind."""
    found = []
    for summary in engine._api.images():  # noqa: SLF001 - read-only listing for the assertion
        found += [t for t in summary.get("RepoTags") or [] if t.startswith(host + "/")]
    return found


def remote(host: str, auth=None) -> dict[str, str | None]:
    """Every tag of REPO in the registry -> its digest."""
    client = RegistryClient(host, credentials=auth)
    resp = requests.get(f"http://{host}/v2/{REPO}/tags/list", auth=auth, timeout=10)
    names = (resp.json().get("tags") or []) if resp.status_code == 200 else []
    return {t: client.tag_digest_or_none(REPO, t) for t in sorted(names)}


def no_test_containers(engine: Engine, image_id: str) -> None:
    left = [c for c in engine._api.containers(all=True) if c.get("ImageID") == image_id]  # noqa: SLF001
    assert left == [], f"containers left behind: {left}"
