"""Per-group layers on a real daemon and a real registry, with a small image rendered from the
project's templates (a lock of two tiny wheels in two groups: `nvidia-*` and one no rule takes).

- `dlbase layers IMAGE --json --strict`: one row per install layer with its group and package
  count, and no package layer rewriting a file of a lower one (the shared `nvidia/` namespace
  and its byte-code included);
- `dlbase build --cache-from REF` on a daemon without the image: it is pulled, the unchanged
  groups come from it (same layer digests), only the changed group is rebuilt, and the push
  of the result uploads only that layer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from dlbase.build import builder as build_mod
from dlbase.engine import Engine
from dlbase.define.spec import BuildSpec
from tests.support.build_cli import cli_env, insert_before_python_env, render
from tests.support.registry import free_port, registry_binary, running_registry
from tests.support.small_project import make_small_project, make_wheel, sha256, write_lock, write_wheel

pytestmark = pytest.mark.docker


def two_group_project(tmp_path: Path):
    sp = make_small_project(tmp_path)
    # A step of this test's own: no other build's cache can stand in for this one's layers.
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN=layers-{uuid.uuid4().hex[:12]}")
    nv = write_wheel(sp.wheelhouse, "nvidia-dlbase-tiny", "1.0",
                     {"nvidia/__init__.py": "", "nvidia/dlbase_tiny/__init__.py": "X = 1\n"})
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    write_lock(spec, sp.lock, [("nvidia-dlbase-tiny", "1.0", sha256(nv)), ("dlbase-tiny", "1.0", sha256(sp.wheel))])
    render(sp)
    return sp, spec


def build(sp, spec, engine: Engine, labels: dict[str, str], port: int, **kw) -> str:
    project = sp.project()
    return build_mod.build(project, spec, engine, tag=False, check_versions=False, extra_labels=labels,
                           wheelhouse_port=port, **kw).image_id


def layers_json(sp, image: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "dlbase", "layers", image, "--json", "--strict"], cwd=sp.root,
                          env=cli_env(sp), capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads(proc.stdout)


def test_layers_lists_groups_without_shadowing(engine: Engine, tmp_path: Path, session_labels) -> None:
    sp, spec = two_group_project(tmp_path)
    image = build(sp, spec, engine, session_labels, free_port())
    code, doc = layers_json(sp, image)
    print("\n" + "\n".join(f"{r['index']:>2} {r['group']:<22} {r['size_bytes']:>10} {r['packages']} "
                           f"{r['shadowed']} {r['step'][:60]}" for r in doc["layers"]))
    assert code == 0 and doc["ok"] is True
    groups = {r["group"]: r for r in doc["layers"]}
    assert groups["cuda"]["packages"] == 1 and groups["unassigned"]["packages"] == 1
    assert groups["venv"]["packages"] >= 1  # pip itself
    for r in doc["layers"]:
        if r["group"] in ("cuda", "unassigned", "venv", "pip check"):
            assert r["shadowed"] == 0, r
    assert [r["group"] for r in doc["layers"]].index("cuda") < [r["group"] for r in doc["layers"]].index("unassigned")


@pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed (tools/host/setup.sh)")
def test_cache_from_a_registry_rebuilds_only_the_changed_group(engine: Engine, tmp_path: Path,
                                                               session_labels) -> None:
    if engine.containerd_store():
        # Refused up front there (the next test); BuildKit's registry cache is test_buildkit_build's.
        pytest.skip("the classic builder's --cache-from cannot restore pulled images on the containerd image "
                    "store (Docker 26: 'failed to read diff archive'); this runs on overlay2 daemons")
    # The classic builder's --cache-from: a published image's layers (BuildKit's registry cache,
    # --cache-to/--cache-from type=registry, is test_buildkit_build's).
    sp, spec = two_group_project(tmp_path)
    port = free_port()
    first = build(sp, spec, engine, session_labels, port, builder="classic")
    first_layers = engine.inspect_image(first)["RootFS"]["Layers"]
    with running_registry(tmp_path / "reg") as reg:
        repo = f"{reg.host}/layers-test"
        engine.tag(first, repo, "v1")
        engine.push(repo, "v1")
        # An empty daemon as far as this image goes: its tag, the image and its build cache are gone.
        engine.untag(repo, "v1")  # its last tag: the image and its untagged parents go with it
        if engine.image_exists(first):
            engine.remove_image(first, force=True)
        assert not engine.image_exists(first)

        # The top group changes: a new dlbase-tiny wheel.
        wheel = make_wheel(sp.wheelhouse, payload="second release")
        nv_wheel = next(sp.wheelhouse.glob("nvidia_dlbase_tiny-*.whl"))
        write_lock(spec, sp.lock, [("nvidia-dlbase-tiny", "1.0", sha256(nv_wheel)),
                                   ("dlbase-tiny", "1.0", sha256(wheel))])
        render(sp)
        second = build(sp, spec, engine, session_labels, port, cache_from=[f"{repo}:v1"], builder="classic")
        second_layers = engine.inspect_image(second)["RootFS"]["Layers"]

        # Every layer below the changed group's subset is the pulled image's, byte for byte.
        shared = 0
        for a, b in zip(first_layers, second_layers):
            if a != b:
                break
            shared += 1
        code, doc = layers_json(sp, second)
        changed_at = next(r["index"] for r in doc["layers"] if r["group"] == "(unassigned subset)")
        cuda_at = next(r["index"] for r in doc["layers"] if r["group"] == "cuda")
        print(f"\n--- {shared} of {len(second_layers)} layers shared with the pulled image "
              f"(cuda group at {cuda_at}, changed subset at {changed_at})")
        assert code == 0
        assert shared == changed_at - 1 and shared >= cuda_at, "unchanged groups were rebuilt"

        engine.tag(second, repo, "v2")
        result = engine.push(repo, "v2")
        pushed = [s for s in result.layers.values() if s.lower().startswith("pushed")]
        existed = [s for s in result.layers.values() if "exists" in s.lower()]
        print(f"--- push of v2: {len(pushed)} pushed, {len(existed)} already in the registry")
        assert len(existed) >= shared - 1 and len(pushed) <= len(second_layers) - shared + 1
        engine.untag(repo, "v2")
        if engine.image_exists(f"{repo}:v1"):
            engine.untag(repo, "v1")


def test_layers_of_a_missing_image_is_one_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "dlbase", "layers", f"dlbase-test/no-such:{uuid.uuid4().hex[:8]}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 14, proc.stderr
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr
    assert "no-such" in proc.stderr


def test_classic_cache_from_on_the_containerd_store_is_refused_with_the_buildkit_route(engine: Engine,
                                                                                       tmp_path: Path,
                                                                                       session_labels) -> None:
    if not engine.containerd_store():
        pytest.skip("the daemon keeps images in overlay2, where the classic --cache-from works (the test above)")
    from dlbase.core.errors import InvalidInput
    sp, spec = two_group_project(tmp_path)
    with pytest.raises(InvalidInput) as info:
        build(sp, spec, engine, session_labels, free_port(), cache_from=["127.0.0.1:5000/none:v1"],
              builder="classic")
    assert "containerd image store" in info.value.message and "--cache-to" in (info.value.hint or "")
