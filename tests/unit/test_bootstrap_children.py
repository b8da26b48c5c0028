"""`base bootstrap` against a mirror that answers the first request and then trickles one
byte every half second: the real debootstrap and its wget wait on it. A SIGTERM to dlbase,
or the deadline, must stop them all: no child outlives dlbase. Needs root and debootstrap
(as `base bootstrap` itself does); the Docker daemon is stood in for (never reached)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlbase.core import deadline as deadlines
from tests.support.slow_server import dripping

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("debootstrap") is None or os.geteuid() != 0,
                                reason="base bootstrap needs debootstrap and root")


@pytest.fixture
def mirror() -> Iterator[str]:
    """``http://127.0.0.1:PORT/debian``: the first request (dlbase's check of the Release
    file) gets a short answer, every later one its headers and then a byte every 0.5 s."""
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nOrigin: "
    with dripping(first=first) as url:
        yield url + "/debian"


def _children_of_the_test(port: str) -> list[str]:
    """Processes still fetching from the test's mirror (wget, debootstrap), by command line."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if port in cmdline and "bootstrap_probe" not in cmdline and int(pid) != os.getpid():
            found.append(f"{pid}: {cmdline.strip()}")
    return found


def _start(mirror: str, tmp_path: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.support.bootstrap_probe", mirror],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "DLBASE_ROOT": str(REPO), "DLBASE_WORKDIR": str(tmp_path), **env})


def _wait_for_wget(port: str, proc: subprocess.Popen) -> None:
    until = time.monotonic() + 30
    while time.monotonic() < until and proc.poll() is None:
        if any("wget" in line for line in _children_of_the_test(port)):
            return
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"debootstrap never reached the mirror: {proc.communicate()[0][-2000:]}")


def _none_left(port: str) -> list[str]:
    until = time.monotonic() + 5
    while (left := _children_of_the_test(port)) and time.monotonic() < until:
        time.sleep(0.2)
    for line in left:  # do not leave them to the next test
        os.kill(int(line.split(":")[0]), signal.SIGKILL)
    return left


def test_sigterm_to_dlbase_stops_debootstrap_and_its_wget(mirror: str, tmp_path: Path) -> None:
    port = mirror.split("//")[1].split("/")[0]
    proc = _start(mirror, tmp_path)
    _wait_for_wget(port, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert _none_left(port) == [], out
    assert list(tmp_path.iterdir()) == []  # the root filesystem folder is gone too


def test_a_trickling_mirror_ends_at_the_deadline_with_no_child_left(mirror: str, tmp_path: Path) -> None:
    port = mirror.split("//")[1].split("/")[0]
    started = time.monotonic()
    proc = _start(mirror, tmp_path, **{deadlines.ENV_VAR: "6"})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 5, out
    assert "did not finish within 6s" in out and time.monotonic() - started < 30
    assert _none_left(port) == [], out
