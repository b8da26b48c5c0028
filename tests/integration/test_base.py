"""The debootstrap base image: what it is, that it is reused, and its clear failures."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from dlbase.build import base
from dlbase.core import errors
from dlbase.engine import MANAGED_LABEL, Engine

pytestmark = pytest.mark.docker


def test_base_is_a_labelled_debian_12(engine: Engine, debian_base: base.BaseImage) -> None:
    assert debian_base.ref == "dlbase/debian:12-minbase"
    info = engine.inspect_image(debian_base.ref)
    assert debian_base.image_id == info["Id"] == debian_base.digest_like
    assert debian_base.image_id.startswith("sha256:")
    assert debian_base.layer and debian_base.layer.startswith("sha256:")
    labels = engine.image_labels(debian_base.ref)
    assert labels[MANAGED_LABEL] == "true"
    assert labels[base.BASE_LABEL] == base.BASE_LABEL_VALUE
    assert info["Config"]["Cmd"] == ["bash"]
    assert f"PATH={base.IMAGE_PATH}" in info["Config"]["Env"]


def test_base_runs_and_is_stripped(engine: Engine, debian_base: base.BaseImage, session_labels) -> None:
    script = ("cat /etc/debian_version; echo PATH=$PATH; "
              "ls /var/lib/apt/lists | grep -v -e '^partial$' -e '^lock$' | wc -l; "
              "ls /var/cache/apt/*.bin 2>/dev/null | wc -l; stat -c %U /etc/passwd")
    result = engine.run(debian_base.ref, ["bash", "-c", script], labels=session_labels)
    assert result.ok, result.output
    version, path, lists, caches, owner = result.output.split()
    assert version.startswith("12.")
    assert path == f"PATH={base.IMAGE_PATH}"
    assert (lists, caches, owner) == ("0", "0", "root")


def test_bootstrap_is_idempotent(engine: Engine, debian_base: base.BaseImage) -> None:
    messages: list[str] = []
    started = time.monotonic()
    again = base.bootstrap(engine, say=messages.append)
    assert time.monotonic() - started < 5
    assert again.image_id == debian_base.image_id and again.layer == debian_base.layer
    assert again.created is False
    assert messages == [f"{debian_base.ref} exists; reusing it"]


def _scratch_repo() -> tuple[str, str]:
    """A repository:tag that does not exist, so bootstrap has to do (and fail) the work."""
    return "dlbase-test/debian", uuid.uuid4().hex[:12]


def test_unreachable_mirror_names_the_mirror(engine: Engine, tmp_path: Path) -> None:
    repository, tag = _scratch_repo()
    mirror = "http://127.0.0.1:9/debian"
    with pytest.raises(errors.Unreachable) as info:
        base.bootstrap(engine, repository=repository, tag=tag, mirror=mirror, workdir=tmp_path)
    assert mirror in info.value.message
    assert not engine.image_exists(f"{repository}:{tag}")
    assert list(tmp_path.iterdir()) == []


def test_unknown_suite_is_reported(engine: Engine, tmp_path: Path) -> None:
    repository, tag = _scratch_repo()
    with pytest.raises(errors.Unreachable) as info:
        base.bootstrap(engine, repository=repository, tag=tag, suite="no-such-suite", workdir=tmp_path)
    assert "no-such-suite" in info.value.message


def test_missing_debootstrap_points_at_setup(engine: Engine, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no debootstrap on this PATH
    repository, tag = _scratch_repo()
    with pytest.raises(errors.Missing) as info:
        base.bootstrap(engine, repository=repository, tag=tag, workdir=tmp_path)
    assert "debootstrap" in info.value.message
    assert "tools/host/setup.sh" in (info.value.hint or "")


def test_existing_image_needs_neither_debootstrap_nor_network(engine: Engine, debian_base: base.BaseImage,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    again = base.bootstrap(engine, mirror="http://127.0.0.1:9/debian")
    assert again.image_id == debian_base.image_id


def test_bootstrap_all_makes_every_bootstrap_base_of_the_matrix(engine: Engine, debian_base: base.BaseImage,
                                                                debian13_base: base.BaseImage) -> None:
    """`make base` runs `--all`: both Debian bases, reused here (a dead mirror proves no
    network was needed), one JSON document listing each."""
    import json
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "dlbase", "base", "bootstrap", "--all", "--json",
                          "--mirror", "http://127.0.0.1:9/debian"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)["bases"]
    assert [(r["ref"], r["image_id"], r["created"]) for r in rows] == [
        (debian_base.ref, debian_base.image_id, False), (debian13_base.ref, debian13_base.image_id, False)]
