"""images/_build/install_group.py: the script each layer RUN runs, tested outside Docker.

The flags are read off the commands it builds; the behaviour is run for real: a fresh venv
in tmp, a wheelhouse folder with a tiny wheel made here and the uv wheel the project pins
(images/_build/installer.lock), the script run with the venv's python as the Dockerfile runs it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from dlbase.define import spec as spec_mod
from tests.support.pypi import PYPI_SKIP
from tests.support.small_project import ROOT, copy_installer_wheels, sha256, write_wheel

SCRIPT = ROOT / spec_mod.INSTALL_SCRIPT
INSTALLER_LOCK = ROOT / spec_mod.INSTALLER_LOCK


def load_script():
    spec = importlib.util.spec_from_file_location("install_group", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ig = load_script()


# ------------------------------------------------------------------ the commands it builds

def test_wheelhouse_means_no_index_and_find_links():
    args, several = ig.source_args({"WHEELHOUSE": "http://127.0.0.1:1234/"})
    assert args == ["--no-index", "--find-links", "http://127.0.0.1:1234/"] and not several


def test_without_wheelhouse_the_indexes_are_used_and_several_need_best_match():
    args, several = ig.source_args({"PIP_INDEX_URL": "https://pypi.org/simple", "PIP_EXTRA_INDEX_URL": ""})
    assert args == ["--index-url", "https://pypi.org/simple"] and not several
    env = {"PIP_INDEX_URL": "https://pypi.org/simple", "PIP_EXTRA_INDEX_URL": "https://download.pytorch.org/whl/cu118"}
    cmd = ig.uv_command("uv", "/opt/venv/bin/python", "g.txt", env)
    assert cmd[cmd.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cu118"
    assert cmd[cmd.index("--index-strategy") + 1] == "unsafe-best-match"
    assert "--index-strategy" not in ig.uv_command("uv", "py", "g.txt", {"WHEELHOUSE": "http://h/"})


@pytest.mark.parametrize("build", [lambda env: ig.uv_command("uv", "py", "g.txt", env),
                                   lambda env: ig.pip_command("py", "g.txt", env)], ids=["uv", "pip"])
def test_both_installers_take_hashes_wheels_only_and_no_deps(build):
    cmd = build({"WHEELHOUSE": "http://h/"})
    assert "--require-hashes" in cmd and "--no-deps" in cmd
    assert "--only-binary=:all:" in cmd or cmd[cmd.index("--only-binary") + 1] == ":all:"
    assert cmd[cmd.index("-r") + 1] == "g.txt"


def test_pip_writes_no_cache_and_no_byte_code_of_its_own():
    cmd = ig.pip_command("py", "g.txt", {})
    assert "--no-cache-dir" in cmd and "--no-compile" in cmd


# ------------------------------------------------------------------ run for real

@pytest.fixture(scope="module")
def house(tmp_path_factory) -> Path:
    """A wheelhouse folder: two tiny wheels and the pinned uv wheel (from the checkout's
    default wheelhouse, the machine's cache, filled from PyPI once per machine)."""
    from dlbase.build.wheelhouse import default_wheelhouse
    from dlbase.define.project import Project
    from dlbase.define.spec import LOCK_PLATFORM, BuildSpec

    project = Project.discover(ROOT)
    spec = BuildSpec.of(project.compat, project.matrix.get(project.matrix.default))
    shared = default_wheelhouse(spec.variant.python, LOCK_PLATFORM, root=ROOT)
    if PYPI_SKIP is not None and not list(shared.glob("uv-*.whl")):
        pytest.skip(f"the uv wheel is not in the default wheelhouse {shared} and {PYPI_SKIP}")
    if not INSTALLER_LOCK.is_file():
        pytest.fail(f"{INSTALLER_LOCK} is missing: run `dlbase lock installer`")
    house = tmp_path_factory.mktemp("house")
    write_wheel(house, "dlbase-low", "1.0", {"dlbase_low/__init__.py": "VALUE = 'low'\n",
                                             "dlbase_low/more.py": "X = 1\n"})
    write_wheel(house, "dlbase-high", "1.0", {"dlbase_high/__init__.py": "from dlbase_low import VALUE\n"})
    copy_installer_wheels(house, spec)
    return house


@pytest.fixture
def env_dir(tmp_path) -> Path:
    """A fresh venv with pip (as the image's), and a private TMPDIR to see what is left behind."""
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    (tmp_path / "tmp").mkdir()
    return tmp_path


def group(tmp: Path, house: Path, name: str, dist: str) -> Path:
    wheel = house / f"{dist.replace('-', '_')}-1.0-py3-none-any.whl"
    path = tmp / f"{name}.txt"
    path.write_text(f"{dist}==1.0 \\\n    --hash=sha256:{sha256(wheel)}\n")
    return path


def run_script(env_dir: Path, house: Path, requirements: Path, installer: str) -> subprocess.CompletedProcess:
    python = env_dir / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV"))}
    env.update(WHEELHOUSE=str(house), TMPDIR=str(env_dir / "tmp"))
    cmd = [str(python), "-B", str(SCRIPT), "--installer", installer, str(requirements)]
    if installer == "uv":
        cmd[5:5] = ["--installer-lock", str(INSTALLER_LOCK)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def site(env_dir: Path) -> Path:
    (lib,) = (env_dir / "venv" / "lib").glob("python3.*")
    return lib / "site-packages"


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_two_groups_install_compile_their_own_files_and_leave_nothing_behind(env_dir, house, installer):
    low, high = group(env_dir, house, "low", "dlbase-low"), group(env_dir, house, "high", "dlbase-high")
    first = run_script(env_dir, house, low, installer)
    assert first.returncode == 0, first.stderr
    assert "Successfully installed dlbase_low-1.0" in first.stdout and "2 file(s) byte-compiled" in first.stdout
    pyc = site(env_dir) / "dlbase_low" / "__pycache__"
    compiled = {p.name: p.read_bytes() for p in pyc.iterdir()}
    stamps = {p.name: p.stat().st_mtime_ns for p in pyc.iterdir()}
    assert len(compiled) == 2
    # checked-hash .pyc (PEP 552 flags = 0b11): no timestamp, so rebuilds write the same bytes,
    # and the source is checked at import, so an edited .py is not shadowed by its byte-code
    assert all(int.from_bytes(b[4:8], "little") == 0b11 for b in compiled.values())

    second = run_script(env_dir, house, high, installer)
    assert second.returncode == 0, second.stderr
    assert "Successfully installed dlbase_high-1.0" in second.stdout and "1 file(s) byte-compiled" in second.stdout
    # the lower group's byte-code was not touched (no copy-up into the higher layer)
    assert {p.name: p.stat().st_mtime_ns for p in pyc.iterdir()} == stamps
    out = subprocess.run([str(env_dir / "venv" / "bin" / "python"), "-c", "import dlbase_high; print(dlbase_high.VALUE)"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "low"
    # a .py edited after the build (as in a running container) runs as edited, not its old
    # byte-code: with unchecked-hash .pyc this printed "low" (the source was never looked at)
    source = site(env_dir) / "dlbase_low" / "__init__.py"
    source.write_text(source.read_text().replace("'low'", "'new'"))
    edited = subprocess.run([str(env_dir / "venv" / "bin" / "python"), "-B", "-c",
                             "import dlbase_high; print(dlbase_high.VALUE)"], capture_output=True, text=True)
    assert edited.stdout.strip() == "new", edited.stderr
    # nothing of the installer is left: no temporary folder, no uv binary, no uv environment lock
    assert list((env_dir / "tmp").iterdir()) == []
    assert not (env_dir / "venv" / ".lock").exists()
    assert not list((env_dir / "venv").rglob("uv")) and shutil.which("uv", path=str(env_dir / "venv" / "bin")) is None
    installer_file = site(env_dir) / "dlbase_high-1.0.dist-info" / "INSTALLER"
    assert installer_file.read_text().strip() == installer


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_wheel_whose_hash_is_not_pinned_is_refused(env_dir, house, installer):
    bad = env_dir / "bad.txt"
    bad.write_text("dlbase-low==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    out = run_script(env_dir, house, bad, installer)
    assert out.returncode != 0
    from dlbase.engine.buildstream import hash_mismatch

    assert hash_mismatch((out.stdout + out.stderr).splitlines()), out.stderr  # the build's hint will name it
    assert f"install_group: {bad}: " in out.stderr
    assert not (site(env_dir) / "dlbase_low").exists()
    assert list((env_dir / "tmp").iterdir()) == []


def test_uv_without_its_pin_is_a_clear_error(env_dir, house):
    python = env_dir / "venv" / "bin" / "python"
    out = subprocess.run([str(python), "-B", str(SCRIPT), "--installer", "uv", str(group(env_dir, house, "low", "dlbase-low"))],
                         capture_output=True, text=True, env={**os.environ, "WHEELHOUSE": str(house)})
    assert out.returncode == 1 and "--installer uv needs --installer-lock" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_installer_lock_that_pins_another_wheel_fails_before_installing(env_dir, house):
    fake = env_dir / "installer.lock"
    fake.write_text("uv==0.13.9 \\\n    --hash=sha256:" + "1" * 64 + "\n")
    python = env_dir / "venv" / "bin" / "python"
    out = subprocess.run([str(python), "-B", str(SCRIPT), "--installer-lock", str(fake),
                          str(group(env_dir, house, "low", "dlbase-low"))],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "WHEELHOUSE": str(house), "TMPDIR": str(env_dir / "tmp")})
    assert out.returncode != 0 and "fetching uv (pip download) failed" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (site(env_dir) / "dlbase_low").exists()
    assert list((env_dir / "tmp").iterdir()) == []
