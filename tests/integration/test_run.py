"""`dlbase run` against a real daemon, on small images rendered from the real templates.

What a researcher relies on: the command's exit code becomes dlbase's, the current folder is
/workspace and what the container writes there belongs to the invoking user, /dev/shm is big
enough for DataLoader workers, -e passes variables through, Ctrl-C stops and removes the
container, and the notebook flavor's URL (with its token) is printed.
"""

from __future__ import annotations

import grp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlbase.build import builder as build_mod
from dlbase.define.spec import BuildSpec
from dlbase.engine import LAUNCHED_LABEL
from tests.support.small_project import make_small_project

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "torch2.6-cu124-notebook-debian12"


def _build(engine, session_labels, tmp_path_factory, variant=None) -> str:
    sp = make_small_project(tmp_path_factory.mktemp("run"), variant=variant)
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    return build_mod.build(project, spec, engine, tag=False, check_versions=False,
                           extra_labels=session_labels).image_id


@pytest.fixture(scope="module")
def image(engine, debian_base, session_labels, tmp_path_factory) -> str:
    return _build(engine, session_labels, tmp_path_factory)


def dlbase(*args: str, cwd: Path, env: dict | None = None, preexec=None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "dlbase", "run", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, preexec_fn=preexec, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_exit_code_becomes_dlbases(image, tmp_path):
    proc = dlbase(image, "--", "sh", "-c", "echo out; echo err >&2; exit 5", cwd=tmp_path)
    assert proc.returncode == 5, proc.stderr
    assert proc.stdout == "out\n"
    assert "err" in proc.stderr


def test_folder_uid_shm_and_env(image, tmp_path):
    code = ("import os; st = os.statvfs('/dev/shm'); "
            "open('/workspace/written', 'w').write('x'); "
            "print(os.getcwd(), os.getuid(), os.getgid(), st.f_blocks * st.f_frsize, os.environ['FROM_HOST'], "
            "os.environ['SET_HERE'])")
    proc = dlbase("-e", "FROM_HOST", "-e", "SET_HERE=1", image, "--", "python", "-c", code, cwd=tmp_path,
                  env={"FROM_HOST": "passed"})
    assert proc.returncode == 0, proc.stderr
    cwd, uid, gid, shm, from_host, set_here = proc.stdout.split()
    assert (cwd, int(uid), int(gid)) == ("/workspace", os.getuid(), os.getgid())
    assert int(shm) == 8 << 30
    assert (from_host, set_here) == ("passed", "1")
    written = tmp_path / "written"
    assert (written.stat().st_uid, written.stat().st_gid) == (os.getuid(), os.getgid())
    assert "dlbase preflight" not in proc.stderr  # nothing to fix: the preflight stays silent


@pytest.fixture
def request_cleanup():
    actions: list = []
    yield actions
    for action in actions:
        action()


def _as_user(uid: int):
    docker_gid = grp.getgrnam("docker").gr_gid

    def become() -> None:
        os.setgroups([docker_gid])
        os.setgid(uid)
        os.setuid(uid)

    return become


def _python_for(uid: int) -> tuple[str | None, dict[str, str]]:
    """An interpreter that user can run dlbase with: this one, or the system's Python 3 of the
    same minor version on this venv's packages (a pyenv Python under /root is not theirs to run)."""
    import sysconfig

    candidates = [(sys.executable, {})]
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if system.is_file():
        path = os.pathsep.join([str(ROOT / "tools"), sysconfig.get_paths()["purelib"]])
        candidates.append((str(system), {"PYTHONPATH": path}))
    why = []
    for python, env in candidates:
        try:
            subprocess.run([python, "-c", "import dlbase.cli"], preexec_fn=_as_user(uid), check=True, cwd="/",
                           capture_output=True, timeout=60, env={**os.environ, **env})
            return python, env
        except (OSError, subprocess.SubprocessError) as exc:
            why.append(f"{python}: {exc}")
    return None, {"why": "no Python here can run dlbase as another user: " + "; ".join(why)}


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_files_belong_to_a_non_root_invoking_user(image, request_cleanup):
    """The trap of the issue: a host user whose UID is not the image's 1000."""
    try:
        grp.getgrnam("docker")
    except KeyError:
        pytest.skip("no docker group to give the other user access to the daemon")
    python, extra_env = _python_for(4321)
    if python is None:
        pytest.skip(extra_env["why"])
    import shutil
    import tempfile

    # A home-like folder the other user can reach (pytest's tmp_path sits under a root-only folder).
    work = Path(tempfile.mkdtemp(prefix="dlbase-run-test-", dir="/tmp"))
    request_cleanup.append(lambda: shutil.rmtree(work, ignore_errors=True))
    os.chmod(work, 0o755)
    os.chown(work, 4321, 4321)
    proc = subprocess.run([python, "-m", "dlbase", "run", image, "--", "sh", "-c", "id -u; echo $HOME; touch made"],
                          cwd=work, capture_output=True, text=True, preexec_fn=_as_user(4321), timeout=120,
                          stdin=subprocess.DEVNULL, env={**os.environ, **extra_env, "HOME": str(work)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["4321", "/tmp/dlbase-home-4321"]
    assert (work / "made").stat().st_uid == 4321


def test_ipc_host_and_shm_size(image, tmp_path):
    code = "import os; st = os.statvfs('/dev/shm'); print(st.f_blocks * st.f_frsize)"
    proc = dlbase("--shm-size", "1g", image, "--", "python", "-c", code, cwd=tmp_path)
    assert proc.returncode == 0 and int(proc.stdout) == 1 << 30, proc.stderr
    host = os.statvfs("/dev/shm")
    proc = dlbase("--ipc", "host", image, "--", "python", "-c", code, cwd=tmp_path)
    assert proc.returncode == 0 and int(proc.stdout) == host.f_blocks * host.f_frsize, proc.stderr


@pytest.mark.parametrize("value, size", [("1.5g", 1536 << 20), ("2GB", 2 << 30), ("0", None)])
def test_shm_size_of_any_spelling_reaches_the_daemon_as_its_bytes(image, tmp_path, value, size):
    """One grammar (dlbase.core.sizes) for the CLI and the launcher: 1.5g was refused by the
    CLI, 2GB by neither but sent as text; 0 was accepted and Docker made it 64 MB."""
    code = "import os; st = os.statvfs('/dev/shm'); print(st.f_blocks * st.f_frsize)"
    proc = dlbase("--shm-size", value, image, "--", "python", "-c", code, cwd=tmp_path)
    if size is None:
        assert proc.returncode == 2 and "zero" in proc.stderr and "--ipc host" in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0 and int(proc.stdout) == size, proc.stderr


def test_json_is_one_document_and_output_goes_to_stderr(image, tmp_path):
    proc = dlbase("--json", image, "--", "sh", "-c", "echo hello; exit 3", cwd=tmp_path)
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 3 and doc["shm_size"] == "8g" and doc["ok"] is False
    assert "hello" in proc.stderr
    # the container's status, not dlbase's exit-3 text ("stale or damaged generated files")
    assert doc["message"] == "the container's command exited with status 3" and doc["container_exit_code"] == 3


def test_a_json_flag_of_the_containers_command_is_its_own(image, tmp_path):
    proc = dlbase(image, "--", "echo", "--json", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "--json\n", proc.stderr


# A variant name without a checkout: tests/integration/test_variant_choice.py (tiny images of a
# variant name of the session's own, so other people's images of the real variants cannot
# make the choice ambiguous, as they could here).


def test_a_workspace_whose_path_has_a_colon_is_mounted(image, tmp_path):
    folder = tmp_path / "data:2024,v1"
    folder.mkdir()
    proc = dlbase("--workspace", str(folder), image, "--", "sh", "-c", "touch /workspace/made && pwd", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "/workspace\n" and (folder / "made").is_file()


def test_a_user_the_image_does_not_have_is_exit_2(image, tmp_path):
    proc = dlbase("--user", "banana", image, "--", "true", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "no such user" in proc.stderr and "what to do:" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_input_is_one_line_and_exit_2(image, tmp_path):
    proc = dlbase("--gpus", "lots", image, "--", "true", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "--gpus 'lots'" in proc.stderr


def test_missing_image_is_named(tmp_path):
    proc = dlbase("no-such-image-dlbase-test:nope", "--", "true", cwd=tmp_path)
    assert proc.returncode == 14, proc.stderr
    assert "no-such-image-dlbase-test:nope" in proc.stderr and "Traceback" not in proc.stderr


def test_ctrl_c_stops_and_removes_the_container(engine, image, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "dlbase", "run", image, "--", "sleep", "300"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)

    def mine() -> list[dict]:
        return [c for c in engine.containers_with_label(f"{LAUNCHED_LABEL}=true") if c.get("ImageID") == image]

    deadline = time.monotonic() + 30
    while not any(c.get("State") == "running" for c in mine()):
        assert time.monotonic() < deadline, "the container never started"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "stopped and removed" in err and "Traceback" not in err
    assert mine() == []


def test_published_port_listens_on_this_machine_only(engine, image, tmp_path):
    """The printed URL says 127.0.0.1; the port must not be open on every interface."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dlbase", "run", "-p", str(port), image, "--", "sleep", "300"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        mine: list[dict] = []
        while not mine:
            assert time.monotonic() < deadline and proc.poll() is None, "the container never started"
            mine = [c for c in engine.containers_with_label(f"{LAUNCHED_LABEL}=true")
                    if c.get("ImageID") == image and c.get("State") == "running" and c.get("Ports")]
            time.sleep(0.2)
        assert {(p.get("IP"), p.get("PublicPort")) for p in mine[0]["Ports"]} == {("127.0.0.1", port)}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def notebook_image(engine, debian_base, session_labels, tmp_path_factory) -> str:
    return _build(engine, session_labels, tmp_path_factory, NOTEBOOK)


def test_notebook_prints_its_url_with_the_token(notebook_image, tmp_path):
    """The small notebook image has no JupyterLab (its lock pins a tiny wheel): the server's
    command fails (127), but everything before it is what the real image gets."""
    proc = dlbase("-p", "18888", "-e", "JUPYTER_TOKEN=chosen-token", notebook_image, cwd=tmp_path)
    assert "notebook: http://127.0.0.1:18888/lab?token=chosen-token" in proc.stderr
    assert proc.returncode == 127, proc.stderr


def test_interactive_terminal_is_proxied(image, tmp_path):
    """stdin and stdout on a terminal: the container gets a TTY and our keystrokes (as `-it`)."""
    import pty
    import select as select_mod

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dlbase", "run", image, "--", "sh", "-c",
                             "test -t 0 && echo is-a-tty; read line; echo got:$line; exit 4"],
                            cwd=tmp_path, stdin=slave, stdout=slave, stderr=subprocess.PIPE, close_fds=True)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    sent = False
    while time.monotonic() < deadline:
        ready, _, _ = select_mod.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        if b"is-a-tty" in seen and not sent:
            os.write(master, b"hello\r")
            sent = True
        if proc.poll() is not None and not ready:
            break
    proc.wait(timeout=30)
    os.close(master)
    assert b"is-a-tty" in seen, seen
    assert b"got:hello" in seen, seen
    assert proc.returncode == 4, proc.stderr.read()
