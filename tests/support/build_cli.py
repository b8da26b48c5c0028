"""Running the real `dlbase` CLI on a small project (tests/support/small_project.py),
as the build failure and build cache tests do: its environment, its outcome, and the
edits those tests make to the copy's templates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.small_project import SmallProject

FULL_LOG_RE = re.compile(r"^full log: (\S+)$", re.M)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float

    def log_path(self) -> Path:
        found = FULL_LOG_RE.search(self.stderr)
        assert found, f"stderr names no log file:\n{self.stderr}"
        path = Path(found.group(1))
        assert path.is_file(), f"the log {path} named on stderr does not exist"
        return path


def cli_env(sp: SmallProject, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DLBASE_ROOT": str(sp.root), "COLUMNS": "250", **extra}
    env.pop("DLBASE_KEEP_TEST_IMAGES", None)
    return env


def cli_args(*args: str, session_labels: dict[str, str], builder: str | None = None) -> list[str]:
    """The CLI's argv; ``builder`` adds ``--builder`` (a build's: the tests written for the
    classic builder's stream name it, since "auto" takes BuildKit where buildx is)."""
    labels = [item for k, v in session_labels.items() for item in ("--label", f"{k}={v}")]
    chosen = ["--builder", builder] if builder else []
    return [sys.executable, "-m", "dlbase", *args, *chosen, *labels]


def run_build(sp: SmallProject, session_labels: dict[str, str], *args: str, timeout: float = 240,
              builder: str = "classic", **env: str) -> Outcome:
    started = time.monotonic()
    proc = subprocess.run(cli_args("build", *args, session_labels=session_labels, builder=builder), cwd=sp.root,
                          env=cli_env(sp, **env), capture_output=True, text=True, timeout=timeout)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, round(time.monotonic() - started, 1))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}: the test no longer edits anything"
    path.write_text(text.replace(old, new, 1))


def render(sp: SmallProject) -> None:
    proc = subprocess.run([sys.executable, "-m", "dlbase", "render"], cwd=sp.root, env=cli_env(sp),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def insert_before_python_env(sp: SmallProject, *lines: str) -> None:
    """Steps placed after the (cached) apt and user layers, before the lock is copied."""
    partial = sp.root / "templates" / "partials" / "python_env.j2"
    partial.write_text("\n".join(lines) + "\n" + partial.read_text())


def insert_after_shell(sp: SmallProject, *lines: str) -> None:
    """Steps placed right after FROM/SHELL: the first thing a cold daemon runs."""
    shell = 'SHELL ["/bin/bash", "-o", "pipefail", "-c"]\n'
    edit(sp.root / "templates" / "Dockerfile.j2", shell, shell + "\n" + "\n".join(lines) + "\n")
