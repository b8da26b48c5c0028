"""dlbase as an operator installs it: built as a wheel, installed into a fresh virtual
environment outside the checkout, run from a folder that is not the checkout.

The project's data (matrix, compat table, templates, rendered variants) is a copy in a
temporary folder named by DLBASE_ROOT; the package's code, its host checks and its
in-image suite must come from the installed wheel. `verify` runs against the session's
default image; `lock --check`, `lint` and `doctor` must work with what the wheel's
dependencies brought (uv, hadolint, pytest + testinfra), nothing from the checkout's venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dlbase.define.lock import find_uv

pytestmark = [pytest.mark.slow, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DATA = ("images", "templates", "README.md", ".hadolint.yaml", ".dockerignore", "ci")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """(venv bin folder, project data copy, a working folder) -- all outside the checkout."""
    tmp = tmp_path_factory.mktemp("installed-wheel")
    dist = tmp / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode != 0 and "Could not" in built.stderr + built.stdout and "setuptools" in built.stderr:
        pytest.skip(f"cannot fetch the build backend from PyPI: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("dlbase-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    installed = subprocess.run([*find_uv(), "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)],
                               capture_output=True, text=True, timeout=900, cwd=tmp)
    assert installed.returncode == 0, installed.stderr[-3000:]
    data = tmp / "project"
    for rel in PROJECT_DATA:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, data / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, data / rel)
    work = tmp / "work"
    work.mkdir()
    return {"bin": venv / "bin", "data": data, "work": work}


def run(installed: dict[str, Path], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The installed `dlbase`, from a folder outside the checkout, with a PATH and a
    PYTHONPATH that cannot reach the checkout or its venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(DLBASE_ROOT=str(installed["data"]), PATH=f"{installed['bin']}:/usr/bin:/bin")
    return subprocess.run([str(installed["bin"] / "dlbase"), *args], cwd=installed["work"], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_carries_the_code_and_both_suites(installed: dict[str, Path]) -> None:
    probe = ("import dlbase, dlbase.suites as s; print(dlbase.__file__); "
             "print(s.infra_dir()); print(s.image_dir())")
    out = subprocess.run([str(installed["bin"] / "python"), "-c", probe], cwd=installed["work"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    site = str(installed["bin"].parent)
    assert all(path.startswith(site) for path in out), out  # nothing from the checkout
    infra, image = Path(out[1]), Path(out[2])
    assert not infra.is_symlink() and (infra / "conftest.py").is_file() and (infra / "pytest.ini").is_file()
    assert (image / "conftest.py").is_file() and (image / "pytest.ini").is_file()
    assert sorted(p.name for p in infra.glob("test_*.py")) == sorted(p.name for p in (ROOT / "tests/infra").glob("test_*.py"))


def test_lock_check_lint_and_doctor_run_from_the_wheel(installed: dict[str, Path]) -> None:
    lock = run(installed, "lock", "--check")
    assert lock.returncode == 0, lock.stderr
    lint = run(installed, "lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    doctor = run(installed, "doctor", "--json")
    rows = {r["check"]: r for r in json.loads(doctor.stdout)["checks"]}
    assert rows["Docker daemon reachable"]["status"] == "ok", doctor.stdout
    assert doctor.returncode in (0, 1) and "Traceback" not in doctor.stderr


def test_verify_of_the_default_image_passes_from_the_wheel(installed: dict[str, Path], default_image: dict) -> None:
    proc = run(installed, "verify", "--json", default_image["image_id"], timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    body = json.loads(proc.stdout)
    assert body["ok"] is True and body["image_id"] == default_image["image_id"]
    halves = {row["half"] for row in body["checks"]}
    assert halves == {"host", "image"}, halves  # the packaged host checks ran, and the in-image suite
