"""The installer pin: `installer:` in the matrix, images/_build/installer.lock, `dlbase lock`'s row
for it, and the build's preflight refusing a stale one (no network: --check paths only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlbase.build import builder as build_mod
from dlbase.define import lock as lock_mod
from dlbase.core.errors import Drift, ExitCode, InvalidInput
from dlbase.define.matrix import Installer
from dlbase.define.matrix import load as load_matrix
from dlbase.define.project import Project
from dlbase.define.spec import INSTALLER_LOCK, BuildSpec, installer_lock_spec

DEFAULT = "torch2.6-cu124-runtime-debian12"


def set_installer(root: Path, block: str) -> None:
    matrix = root / "images" / "matrix.yaml"
    text = matrix.read_text()
    start = text.index("\ninstaller:\n")
    end = text.index("\n\n", start + 1)
    matrix.write_text(text[:start] + "\n" + block.rstrip("\n") + text[end:])


def test_the_committed_installer_lock_is_current_and_pins_uv_with_every_wheel_hash():
    project = Project.discover(Path(__file__).resolve().parents[2])
    assert project.matrix.installer == Installer(tool="uv", version=project.matrix.installer.version)
    lock = lock_mod.check_lock(installer_lock_spec(project.matrix), project.root / INSTALLER_LOCK, complete=True)
    (uv,) = lock.packages
    assert (uv.key, uv.version) == ("uv", project.matrix.installer.version)
    assert len(uv.hashes) > 5  # x86_64 and aarch64 wheels (and more): pip picks the one that fits


def test_lock_check_reports_the_installer_row(cli):
    res = cli("lock", "--check", DEFAULT, "--json")
    assert res.code == 0, res.output
    rows = {r["variant"]: r for r in json.loads(res.out)["variants"]}
    assert rows["installer"]["status"] == "current" and rows["installer"]["lock"] == INSTALLER_LOCK
    assert rows[DEFAULT]["status"] == "current"


def test_a_new_uv_pin_makes_the_installer_lock_stale_and_the_build_refuse(cli, project_copy):
    set_installer(project_copy, 'installer:\n  tool: uv\n  version: "0.13.8"\n')
    res = cli("lock", "--check", "installer", "--json")
    assert res.code == ExitCode.DRIFT, res.output
    doc = json.loads(res.out)
    assert doc["ok"] is False and [r["status"] for r in doc["variants"]] == ["stale"]
    project = Project.discover(project_copy)
    with pytest.raises(Drift):
        build_mod.preflight(project, BuildSpec.of(project.compat, project.matrix.get(DEFAULT)))


def test_installer_pip_needs_no_lock_and_renders_no_fetch(cli, project_copy):
    set_installer(project_copy, "installer:\n  tool: pip\n")
    (project_copy / INSTALLER_LOCK).unlink()
    res = cli("render")
    assert res.code == 0, res.output
    dockerfile = (project_copy / "images" / DEFAULT / "Dockerfile").read_text()
    assert "--installer pip " in dockerfile and "installer.lock" not in dockerfile
    res = cli("lock", "--check", DEFAULT, "--json")
    assert res.code == 0, res.output
    assert "installer" not in {r["variant"] for r in json.loads(res.out)["variants"]}


@pytest.mark.parametrize("block, words", [
    ("installer:\n  tool: conda\n", "installer tool must be one of uv, pip"),
    ("installer:\n  tool: uv\n", "installer uv needs an exact version"),
    ("installer:\n  tool: uv\n  version: 0.13\n", "installer uv needs an exact version"),
    ('installer:\n  tool: pip\n  version: "23.0"\n', "installer pip takes no version"),
    ("installer:\n  tool: uv\n  version: \"0.13.9\"\n  mirror: x\n", "unknown key 'mirror' in installer"),
    ("installer: uv\n", "installer must be a mapping"),
])
def test_bad_installer_entries_name_the_problem(project_copy, block, words):
    set_installer(project_copy, block)
    with pytest.raises(InvalidInput) as exc:
        load_matrix(project_copy / "images" / "matrix.yaml")
    assert words in str(exc.value) + " ".join(getattr(exc.value, "details", []) or [])
