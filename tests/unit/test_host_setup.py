"""tools/host/setup.sh installs only what is missing and needed, and leaves a daemon that
already answers alone (a hosted runner with Docker CE must not get Debian's docker.io).

The script runs for real with stub commands first on PATH (id, dpkg-query, apt-get, docker,
dockerd...) that record what they were asked; nothing is installed on this machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[2] / "tools" / "host" / "setup.sh"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


def run_setup(tmp_path: Path, *, daemon: bool, installed: set[str], commands: set[str]) -> tuple[int, str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    _stub(bin_dir, "id", 'echo 0')
    wanted = " ".join(sorted(installed))
    _stub(bin_dir, "dpkg-query", f'for p in {wanted}; do [ "${{@: -1}}" = "$p" ] && {{ printf "install ok installed"; exit 0; }}; done; exit 1')
    _stub(bin_dir, "apt-get", f'echo "$@" >> {log}')
    _stub(bin_dir, "docker", "exit 0" if daemon else "exit 1")
    for name in commands:
        _stub(bin_dir, name, "sleep 0")
    # Only the stubs and the shell's basics: /usr/bin may hold the real dockerd, debootstrap...
    basics = tmp_path / "basics"
    basics.mkdir()
    for tool in ("date", "printf", "sleep", "cat", "tail", "setsid", "nohup", "kill", "dirname"):
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if real.startswith("/"):
            (basics / tool).symlink_to(real)
    env = {"PATH": f"{bin_dir}:{basics}", "HOME": str(tmp_path), "DLBASE_DOCKERD_TIMEOUT": "2",
           "DLBASE_DOCKERD_LOG": str(tmp_path / "dockerd.log")}
    proc = subprocess.run(["/bin/bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr, log.read_text() if log.exists() else ""


def test_docker_ce_runner_gets_no_docker_io_and_its_daemon_is_left_alone(tmp_path):
    # Docker CE: dockerd + docker on PATH, daemon answers; dpkg knows no docker.io.
    code, out, apt = run_setup(tmp_path, daemon=True, installed={"ca-certificates"},
                               commands={"dockerd"})
    assert code == 0, out
    assert "docker.io" not in apt and "install" in apt  # the tools it lacks, not the engine
    assert "debootstrap" in apt and "docker-registry" in apt
    assert "already answering" in out and "starting dockerd" not in out


def test_nothing_missing_means_no_apt_at_all(tmp_path):
    code, out, apt = run_setup(tmp_path, daemon=True, installed=set(),
                               commands={"dockerd", "debootstrap", "docker-registry", "htpasswd"})
    assert code == 0, out
    if not Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        pytest.skip("this machine has no CA bundle, so ca-certificates is rightly needed")
    assert apt == "", apt
    assert "nothing to install" in out


def test_bare_host_gets_docker_io(tmp_path):
    code, out, apt = run_setup(tmp_path, daemon=False, installed=set(), commands=set())
    assert "docker.io" in apt, (apt, out)
    assert code != 0 and "dockerd not found" in out  # the stub apt-get installed nothing
