"""tools/host/setup.sh installs only what is missing and needed, and leaves a daemon that
already answers alone (a hosted runner with Docker CE must not get Debian's docker.io).

The script runs for real with stub commands first on PATH (id, dpkg-query, apt-get, docker,
dockerd...) that record what they were asked; nothing is installed on this machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[2] / "tools" / "host" / "setup.sh"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


def run_setup(tmp_path: Path, *, daemon: bool, installed: set[str], commands: set[str],
              codename: str = "bookworm", simulated: str = "", server: str = "",
              buildx: bool = True, extra_env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run setup.sh; ``simulated`` is what the stub ``apt-get install -s`` prints. apt's
    configuration folder is tmp_path/etc-apt, the os-release names ``codename``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "apt.log"
    _stub(bin_dir, "id", 'echo 0')
    wanted = " ".join(sorted(installed))
    _stub(bin_dir, "dpkg-query", f'for p in {wanted}; do [ "${{@: -1}}" = "$p" ] && {{ printf "install ok installed"; exit 0; }}; done; exit 1')
    (tmp_path / "simulated.txt").write_text(simulated)
    _stub(bin_dir, "apt-get", f'echo "$@" >> {log}; [ "$2" = "-s" ] && cat {tmp_path / "simulated.txt"}; exit 0')
    apt_etc = tmp_path / "etc-apt"
    (apt_etc / "sources.list.d").mkdir(parents=True, exist_ok=True)
    (apt_etc / "preferences.d").mkdir(parents=True, exist_ok=True)
    (tmp_path / "os-release").write_text(f'ID=debian\nVERSION_CODENAME={codename}\n')
    # The stub daemon answers `docker version -f` with ``server`` and `docker buildx version`
    # only when ``buildx``; any other call succeeds when ``daemon``.
    _stub(bin_dir, "docker", f'[ "$1" = buildx ] && {{ {"echo buildx 0.13.1; exit 0" if buildx else "exit 1"}; }}; '
                             f'[ "$1" = version ] && {{ {f"echo {server}; exit 0" if daemon else "exit 1"}; }}; '
                             + ("exit 0" if daemon else "exit 1"))
    for name in commands:
        _stub(bin_dir, name, "sleep 0")
    # Only the stubs and the shell's basics: /usr/bin may hold the real dockerd, debootstrap...
    basics = tmp_path / "basics"
    basics.mkdir(exist_ok=True)
    for tool in ("date", "printf", "sleep", "cat", "tail", "setsid", "nohup", "kill", "dirname", "mkdir",
                 "grep", "head"):
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if real.startswith("/") and not (basics / tool).exists():
            (basics / tool).symlink_to(real)
    if not (basics / "python3").exists():  # daemon.json is merged with python3's json
        (basics / "python3").symlink_to(sys.executable)
    env = {"PATH": f"{bin_dir}:{basics}", "HOME": str(tmp_path), "DLBASE_DOCKERD_TIMEOUT": "2",
           "DLBASE_DOCKERD_LOG": str(tmp_path / "dockerd.log"), "DLBASE_APT_ETC": str(apt_etc),
           "DLBASE_OS_RELEASE": str(tmp_path / "os-release"), "DLBASE_DOCKER_ETC": str(tmp_path / "etc-docker"),
           # Never the real daemon's pid file: the replacement path kills what it names.
           "DLBASE_DOCKER_PIDFILE": str(tmp_path / "docker.pid"), **(extra_env or {})}
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
                               commands={"dockerd", "debootstrap", "docker-registry", "htpasswd", "cosign"})
    assert code == 0, out
    if not Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        pytest.skip("this machine has no CA bundle, so ca-certificates is rightly needed")
    assert apt == "", apt
    assert "nothing to install" in out


def test_bare_bookworm_host_gets_debian_13s_engine_cli_and_buildx_with_bookworms_containerd(tmp_path):
    code, out, apt = run_setup(tmp_path, daemon=False, installed=set(), commands=set())
    lines = apt.splitlines()
    deps = "install -y -qq --no-install-recommends containerd runc tini iptables"
    engine = "install -y -qq --no-install-recommends docker.io/trixie docker-cli/trixie docker-buildx/trixie cosign/trixie"
    assert deps in lines and engine in lines, (apt, out)
    assert lines.index(deps) < lines.index(engine)  # plain names first: bookworm's containerd, not trixie's
    assert code != 0 and "dockerd not found" in out  # the stub apt-get installed nothing


def test_a_started_dockerd_gets_the_containerd_image_store_and_keeps_other_settings(tmp_path):
    etc = tmp_path / "etc-docker"
    etc.mkdir()
    (etc / "daemon.json").write_text('{"log-level": "warn", "features": {"buildkit": true}}')
    # dockerd 26 is here (a stub whose --version says so) and no daemon answers yet: it is started.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "dockerd", 'echo "Docker version 26.1.5+dfsg1, build 411e817"')
    code, out, apt = run_setup(tmp_path, daemon=False, installed={"ca-certificates"},
                               commands={"debootstrap", "docker-registry", "htpasswd", "cosign"})
    import json
    config = json.loads((etc / "daemon.json").read_text())
    assert config == {"log-level": "warn", "features": {"buildkit": True, "containerd-snapshotter": True}}, out
    assert "docker.io" not in apt, apt  # a dockerd >= 26 is kept
    assert "containerd image store turned on" in out and "starting dockerd" in out


@pytest.mark.parametrize("existing, expected_builder", [
    ('{"features": {"containerd-snapshotter": true}}', {"gc": {"enabled": True, "defaultKeepStorage": "10GB"}}),
    ('{"builder": {"gc": {"enabled": false}}}', {"gc": {"enabled": False}}),
], ids=["capped", "owner-policy-kept"])
def test_buildkit_keep_storage_caps_the_cache_unless_the_file_has_a_builder_policy(tmp_path, existing,
                                                                                    expected_builder):
    etc = tmp_path / "etc-docker"
    etc.mkdir()
    (etc / "daemon.json").write_text(existing)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "dockerd", 'echo "Docker version 26.1.5+dfsg1, build 411e817"')
    code, out, _ = run_setup(tmp_path, daemon=False, installed={"ca-certificates"},
                             commands={"debootstrap", "docker-registry", "htpasswd", "cosign"},
                             extra_env={"DLBASE_BUILDKIT_KEEP_STORAGE": "10GB"})
    import json
    config = json.loads((etc / "daemon.json").read_text())
    assert config["builder"] == expected_builder, out
    assert config["features"]["containerd-snapshotter"] is True
    assert ("BuildKit cache capped at 10GB" in out) == (expected_builder["gc"]["enabled"] is True), out


def test_an_older_docker_ce_daemon_is_kept_and_debian_s_old_docker_io_is_replaced(tmp_path):
    # Docker CE 24 (not Debian's package): kept, never replaced.
    code, out, apt = run_setup(tmp_path, daemon=True, installed={"ca-certificates"},
                               commands=EVERYTHING_BUT_COSIGN | {"cosign"}, server="24.0.7")
    assert code == 0 and "docker.io" not in apt and "keeping what is here" in out, (out, apt)
    # Debian 12's own docker.io 20.10 answers: it is stopped and replaced by 26.1 (the stub has no pid file).
    code, out, apt = run_setup(tmp_path, daemon=True, installed={"ca-certificates", "docker.io"},
                               commands=EVERYTHING_BUT_COSIGN | {"cosign"}, server="20.10.24+dfsg1")
    assert code != 0 and "docker.pid names no process" in out, out
    assert "docker.io/trixie" not in apt  # nothing installed while the old daemon still runs


# --------------------------------------------------------------------------- cosign from trixie

EVERYTHING_BUT_COSIGN = {"dockerd", "debootstrap", "docker-registry", "htpasswd"}


def test_bookworm_gets_cosign_from_trixie_pinned_so_nothing_else_comes_from_there(tmp_path):
    code, out, apt = run_setup(tmp_path, daemon=True, installed={"ca-certificates"}, commands=EVERYTHING_BUT_COSIGN)
    assert code == 0, out
    sources = (tmp_path / "etc-apt" / "sources.list.d" / "dlbase-trixie.sources").read_text()
    pin = (tmp_path / "etc-apt" / "preferences.d" / "dlbase-trixie").read_text()
    assert "Suites: trixie" in sources and "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in sources
    assert "Package: *" in pin and "Pin: release n=trixie" in pin and "Pin-Priority: 100" in pin
    lines = apt.splitlines()
    assert lines[0] == "update -qq"
    assert "install -s --no-install-recommends cosign/trixie" in lines  # the simulation guard ran first
    assert lines[-1] == "install -y -qq --no-install-recommends cosign/trixie"  # named, not -t trixie


def test_second_run_rewrites_nothing_and_a_present_cosign_needs_no_apt(tmp_path):
    run_setup(tmp_path, daemon=True, installed={"ca-certificates"}, commands=EVERYTHING_BUT_COSIGN)
    pin = tmp_path / "etc-apt" / "preferences.d" / "dlbase-trixie"
    before = pin.stat().st_mtime_ns
    (tmp_path / "apt.log").unlink()
    code, out, apt = run_setup(tmp_path, daemon=True, installed={"ca-certificates"}, commands=EVERYTHING_BUT_COSIGN)
    assert code == 0 and "added Debian 13" not in out, out
    assert pin.stat().st_mtime_ns == before
    (tmp_path / "apt.log").unlink()
    code, out, apt = run_setup(tmp_path, daemon=True, installed={"ca-certificates"},
                               commands=EVERYTHING_BUT_COSIGN | {"cosign"})
    assert code == 0 and apt == "" and "cosign already present" in out, (out, apt)


def test_a_cosign_that_would_drag_other_trixie_packages_is_refused(tmp_path):
    simulated = ("Inst runc (1.1.15-1 Debian:13.1/stable [amd64])\n"
                 "Inst cosign (2.5.0-2+b5 Debian:13.1/stable [amd64])\n")
    code, out, apt = run_setup(tmp_path, daemon=True, installed={"ca-certificates"}, commands=EVERYTHING_BUT_COSIGN,
                               simulated=simulated)
    assert code != 0 and "would also take runc from trixie" in out, out
    assert "install -y -qq --no-install-recommends cosign/trixie" not in apt  # nothing installed


def test_bookworm_dependencies_next_to_cosign_are_fine(tmp_path):
    simulated = ("Inst libfoo (1.0-1 Debian:12.15/oldstable [amd64])\n"
                 "Inst cosign (2.5.0-2+b5 Debian:13.1/stable [amd64])\n")
    code, out, apt = run_setup(tmp_path, daemon=True, installed={"ca-certificates"}, commands=EVERYTHING_BUT_COSIGN,
                               simulated=simulated)
    assert code == 0, out
    assert apt.splitlines()[-1] == "install -y -qq --no-install-recommends cosign/trixie"


def test_other_systems_take_cosign_from_their_own_sources_and_never_add_trixie(tmp_path):
    code, out, apt = run_setup(tmp_path, daemon=True, installed={"ca-certificates"}, commands=EVERYTHING_BUT_COSIGN,
                               codename="noble")
    assert code == 0, out
    assert not (tmp_path / "etc-apt" / "sources.list.d" / "dlbase-trixie.sources").exists()
    assert "cosign/trixie" not in apt and apt.splitlines()[-1] == "install -y -qq --no-install-recommends cosign"
