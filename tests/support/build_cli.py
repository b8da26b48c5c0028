"""Running the real `dlbase` CLI on a small project (tests/support/small_project.py),
as the build failure and build cache tests do: its environment, its outcome, and the
edits those tests make to the copy's templates."""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlbase.engine import Engine
from dlbase.define.spec import BuildSpec
from tests.support.small_project import SmallProject, sha256, write_lock, write_wheel

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


def assert_no_tag_moved(engine: Engine, test_repo: dict[str, str]) -> None:
    assert engine.inspect_image(test_repo["moving"])["Id"] == test_repo["sentinel"], "the moving tag moved"
    tags = {t for img in engine._api.images(name=test_repo["repo"]) for t in img.get("RepoTags") or []}
    assert tags == {test_repo["moving"]}, f"a failed build applied tags: {tags - {test_repo['moving']}}"


def assert_one_error(out: Outcome, exit_code: int) -> None:
    assert out.code == exit_code, f"exit {out.code}, expected {exit_code}:\n{out.stderr}"
    assert "Traceback" not in out.stderr, out.stderr
    assert len(re.findall(r"^error: ", out.stderr, re.M)) == 1, out.stderr


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> list[str]:
    """Read the child's stderr until a line contains ``needle``; return what was read."""
    lines: list[str] = []
    sel = selectors.DefaultSelector()
    assert proc.stderr is not None
    sel.register(proc.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=1):
            continue
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    pytest.fail(f"never saw {needle!r} (exit {proc.poll()}):\n{''.join(lines)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def steady_port(low: int = 20000, high: int = 32000) -> int:
    """A free port below Linux's ephemeral range (32768-60999), for a wheelhouse port that
    several builds minutes apart must all get: a port from :func:`free_port` is ephemeral,
    and any outgoing connection may take it in between (the build then serves elsewhere,
    and its digest differs)."""
    import random

    for port in random.sample(range(low, high), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def log_of(out: Outcome, sp: SmallProject) -> str:
    found = re.search(r"^log: (\S+)$", out.stderr, re.M)
    path = Path(found.group(1)) if found else sorted((sp.root / ".dlbase" / "logs").glob("*.log"))[-1]
    return path.read_text()


def stand_in_stack(sp: SmallProject) -> None:
    """Replace the tiny lock by stand-ins for the variant's stack, versions as promised."""
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    want = spec.versions()
    sp.wheel.unlink()
    torch_files = {
        "torch/__init__.py": f"__version__ = '{want['torch']}+{spec.line.name}'\n"
                             "from . import backends, cuda, version\n",
        "torch/version.py": f"cuda = '{want['cuda']}'\n",
        "torch/backends/__init__.py": "from . import cudnn\n",
        "torch/backends/cudnn.py": "def version():\n    return 90100\n",
        "torch/cuda/__init__.py": "from . import nccl\n",
        "torch/cuda/nccl.py": "def version():\n    return (2, 21, 5)\n",
    }
    wheels = [
        write_wheel(sp.wheelhouse, "torch", want["torch"], torch_files),
        write_wheel(sp.wheelhouse, "torchvision", want["torchvision"], {"torchvision/__init__.py": ""}),
        write_wheel(sp.wheelhouse, "albumentations", want["albumentations"], {"albumentations/__init__.py": ""}),
        write_wheel(sp.wheelhouse, "opencv-python-headless", want["opencv"],
                    {"cv2/__init__.py": f"__version__ = '{'.'.join(want['opencv'].split('.')[:3])}'\n"}),
        write_wheel(sp.wheelhouse, "numpy", want["numpy"], {"numpy/__init__.py": ""}),
    ]
    pins = [("torch", want["torch"], sha256(wheels[0])), ("torchvision", want["torchvision"], sha256(wheels[1])),
            ("albumentations", want["albumentations"], sha256(wheels[2])),
            ("opencv-python-headless", want["opencv"], sha256(wheels[3])), ("numpy", want["numpy"], sha256(wheels[4]))]
    write_lock(spec, sp.lock, pins)
    render(sp)  # the per-group subsets and install steps follow the new lock
