"""Shared fixtures for the fast unit tests (no Docker daemon, no network).

- ``project_copy``: a throw-away copy of the project's data (images/, templates/,
  README.md, .hadolint.yaml, ci/) with DLBASE_ROOT pointing at it, so a
  test can break the matrix or edit a rendered file and run the real CLI against it.
- ``cli``: runs ``dlbase.cli.app`` (the real entry point: argument parsing, error
  printing, exit codes) in-process and returns exit code, stdout and stderr.
- ``edit``: replaces text in a file of the copy, failing loudly when the text to replace
  is not there (so a test cannot silently stop testing anything after a matrix change).
- ``private_cache`` (autouse): DLBASE_CACHE_DIR points into the run's tmp folder, so no
  unit test touches the machine's wheelhouse cache (~/.cache/dlbase).
- ``--update-golden`` (or DLBASE_UPDATE_GOLDEN=1) regenerates tests/unit/golden/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
MATRIX_REL = "images/matrix.yaml"
COMPAT_REL = "images/compat.yaml"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/unit/golden/* from the current templates instead of comparing")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden", default=False)
                or os.environ.get("DLBASE_UPDATE_GOLDEN") == "1")


def raw_yaml(path: Path) -> Any:
    """The file as plain data, read without dlbase, for expectations independent of the code."""
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dlbase-cache")


@pytest.fixture(autouse=True)
def private_cache(_private_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DLBASE_CACHE_DIR for every unit test: one folder of this run's (of this xdist
    worker's) own, so no unit test reads or fills the machine's shared wheelhouse cache,
    and parallel workers never share one."""
    monkeypatch.setenv("DLBASE_CACHE_DIR", str(_private_cache_dir))
    return _private_cache_dir


@pytest.fixture(scope="session")
def raw_matrix() -> dict:
    return raw_yaml(REPO / MATRIX_REL)


@pytest.fixture(scope="session")
def raw_compat() -> dict:
    return raw_yaml(REPO / COMPAT_REL)


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(REPO / "images", root / "images")
    shutil.copytree(REPO / "templates", root / "templates")
    for name in ("README.md", ".hadolint.yaml"):
        shutil.copy2(REPO / name, root / name)
    if (REPO / "ci").is_dir():  # generated CI files (bake file, workflow) are drift-checked too
        shutil.copytree(REPO / "ci", root / "ci")
    monkeypatch.setenv("DLBASE_ROOT", str(root))
    return root


@pytest.fixture
def edit() -> Callable[..., str]:
    def _edit(path: Path, old: str, new: str, count: int = 1) -> str:
        text = path.read_text(encoding="utf-8")
        assert old in text, f"test setup: {old!r} not found in {path}"
        text = text.replace(old, new, count)
        path.write_text(text, encoding="utf-8")
        return text
    return _edit


def _lineno_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the n-th line containing needle (computed from the text)."""
    seen = 0
    for no, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return no
    raise AssertionError(f"{needle!r} not in text")


@pytest.fixture
def lineno_of() -> Callable[..., int]:
    return _lineno_of


@pytest.fixture
def raw() -> Callable[[Path], Any]:
    return raw_yaml


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run `dlbase ARGS...` through dlbase.cli.app; DLBASE_ROOT defaults to this repository."""
    from dlbase.cli import app as cli_mod
    from dlbase.cli import ui

    monkeypatch.setattr(ui.out, "_width", 250)  # one table row per line, whatever the terminal

    def _run(*args: str) -> CliResult:
        if not os.environ.get("DLBASE_ROOT"):
            monkeypatch.setenv("DLBASE_ROOT", str(REPO))
        capsys.readouterr()
        try:
            cli_mod.main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, _ANSI.sub("", out), _ANSI.sub("", err))

    return _run
