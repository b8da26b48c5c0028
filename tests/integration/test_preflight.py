"""The image's entrypoint and preflight, on small images rendered from the real templates.

The preflight is stdlib-only (no torch), so the small image (Debian 12 + Python 3.11 + a tiny
wheel, ~15 s to build) exercises exactly the code a full image runs: Docker's default 64 MB
/dev/shm, a read-only or foreign-owned workspace, an arbitrary UID, the skip switch, and the
notebook flavor's stop at start-up with one message naming the fix.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dlbase.build import builder as build_mod
from dlbase.define.spec import BuildSpec
from tests.support.small_project import make_small_project

pytestmark = pytest.mark.docker
NOTEBOOK = "torch2.6-cu124-notebook-debian12"
EXIT_STOP = 78


def _build(engine, session_labels, tmp_path_factory, variant: str | None) -> str:
    sp = make_small_project(tmp_path_factory.mktemp("preflight"), variant=variant)
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    res = build_mod.build(project, spec, engine, tag=False, check_versions=False, extra_labels=session_labels)
    return res.image_id


@pytest.fixture(scope="module")
def runtime_image(engine, debian_base, session_labels, tmp_path_factory) -> str:
    return _build(engine, session_labels, tmp_path_factory, None)


@pytest.fixture(scope="module")
def notebook_image(engine, debian_base, session_labels, tmp_path_factory) -> str:
    return _build(engine, session_labels, tmp_path_factory, NOTEBOOK)


def docker_run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The docker CLI, as a researcher types it (the seed's `docker run ...`)."""
    return subprocess.run(["docker", "run", "--rm", "--label", "dlbase.managed=true", *args],
                          capture_output=True, text=True, timeout=timeout)


def preflight_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("dlbase preflight:")]


def test_default_shm_warns_with_the_fix_and_still_runs(runtime_image):
    proc = docker_run(runtime_image, "python", "-c", "print('ran')")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ran"
    lines = preflight_lines(proc)
    shm = [line for line in lines if " shm " in line]
    assert shm and "warn" in shm[0] and "64 MB" in shm[0], lines
    assert any("--shm-size" in line and "--ipc=host" in line for line in lines), lines
    # CPU only: a missing GPU is never a warning, let alone a stop
    assert not any("driver" in line and ("warn" in line or "fail" in line) for line in lines), lines


def test_enough_shm_and_a_writable_workspace_print_nothing(runtime_image):
    proc = docker_run("--shm-size", "2g", runtime_image, "python", "-c", "print('ran')")
    assert proc.returncode == 0, proc.stderr
    assert preflight_lines(proc) == []


def test_verbose_lists_every_row(runtime_image):
    proc = docker_run("--shm-size", "2g", "-e", "DLBASE_PREFLIGHT=verbose", runtime_image, "true")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[3] for line in preflight_lines(proc)]
    assert names == ["driver", "gpu", "shm", "workspace"], proc.stderr


def test_read_only_workspace_names_the_folder_and_the_fix(runtime_image, tmp_path):
    proc = docker_run("--shm-size", "2g", "-v", f"{tmp_path}:/workspace:ro", runtime_image, "true")
    assert proc.returncode == 0, proc.stderr  # runtime flavor: a warning, the command still runs
    lines = preflight_lines(proc)
    assert any("workspace" in line and "read-only mount" in line and "/workspace" in line for line in lines), lines
    assert any("fix:" in line and "drop `:ro`" in line for line in lines), lines


def test_arbitrary_uid_gets_a_writable_home_and_caches(runtime_image):
    script = ("import os, pathlib, tempfile\n"
              "for key in ('HOME', 'XDG_CACHE_HOME', 'TORCH_HOME', 'TRITON_CACHE_DIR', 'MPLCONFIGDIR',\n"
              "            'JUPYTER_DATA_DIR', 'JUPYTER_RUNTIME_DIR', 'IPYTHONDIR'):\n"
              "    p = pathlib.Path(os.environ[key]); p.mkdir(parents=True, exist_ok=True)\n"
              "    (p / 'probe').write_text('x'); print(key, p)\n"
              "pathlib.Path('/workspace/made-by-4242').write_text('x')\n")
    proc = docker_run("--shm-size", "2g", "-u", "4242:4242", runtime_image, "python", "-c", script)
    assert proc.returncode == 0, proc.stderr
    paths = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert paths["HOME"] == "/tmp/dlbase-home-4242", paths
    assert all(p.startswith("/tmp/dlbase-home-4242/") for k, p in paths.items() if k != "HOME"), paths
    assert preflight_lines(proc) == [], proc.stderr


def test_uid_1000_keeps_its_home(runtime_image):
    proc = docker_run("--shm-size", "2g", runtime_image, "sh", "-c", 'echo "$HOME $TORCH_HOME"')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["/home/dl", "/home/dl/.cache/torch"]


def test_skip_switch_prints_nothing(runtime_image, tmp_path):
    proc = docker_run("-e", "DLBASE_SKIP_PREFLIGHT=1", "-v", f"{tmp_path}:/workspace:ro", runtime_image, "true")
    assert proc.returncode == 0, proc.stderr
    assert preflight_lines(proc) == []


def test_require_gpu_stops_a_cpu_only_container(runtime_image):
    proc = docker_run("--shm-size", "2g", "-e", "DLBASE_REQUIRE_GPU=1", runtime_image, "echo", "never")
    assert proc.returncode == EXIT_STOP, proc.stderr
    assert "never" not in proc.stdout
    lines = preflight_lines(proc)
    assert any("fail" in line and "driver" in line for line in lines), lines
    assert any("--gpus all" in line for line in lines), lines


def test_exit_code_and_tini_pid1(runtime_image):
    proc = docker_run("--shm-size", "2g", runtime_image, "sh", "-c", "cat /proc/1/comm; exit 7")
    assert proc.returncode == 7
    assert proc.stdout.strip() == "tini"


def test_seed_notebook_command_with_a_foreign_owned_folder_stops_with_the_fix(notebook_image, tmp_path):
    """`docker run -p 8888:8888 -v ./notebooks:/workspace/notebooks IMAGE` where ./notebooks
    belongs to a user other than the image's uid 1000: one stop, naming the fix."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    os.chmod(notebooks, 0o755)
    if os.getuid() == 1000:
        pytest.skip("the test user is uid 1000, the image's own user: the folder would be writable")
    proc = docker_run("-v", f"{notebooks}:/workspace/notebooks", notebook_image)
    assert proc.returncode == EXIT_STOP, (proc.returncode, proc.stderr)
    lines = preflight_lines(proc)
    assert any("fail" in line and "/workspace/notebooks" in line for line in lines), lines
    assert any("-u $(id -u):$(id -g)" in line for line in lines), lines
    # ... and with the fix it names, the folder is writable (the server would start)
    owner = f"{notebooks.stat().st_uid}:{notebooks.stat().st_gid}"
    fixed = docker_run("--shm-size", "2g", "-u", owner, "-v", f"{notebooks}:/workspace/notebooks", notebook_image,
                       "sh", "-c", "touch /workspace/notebooks/saved && echo $HOME")
    assert fixed.returncode == 0, fixed.stderr
    assert (notebooks / "saved").is_file()
    assert preflight_lines(fixed) == [], fixed.stderr


def test_preflight_runs_on_an_isolated_python_without_site(runtime_image):
    """The entrypoint runs it as `python -I -S`: no site-packages, so no torch, no dlbase."""
    code = ("import runpy, sys; m = runpy.run_path('/opt/dlbase/preflight.py'); "
            "rc = m['main']({'DLBASE_PREFLIGHT': 'quiet'}); "
            "print(rc, sorted(n for n in ('torch', 'dlbase', 'numpy') if n in sys.modules))")
    proc = docker_run("--shm-size", "2g", "--entrypoint", "python", runtime_image, "-I", "-S", "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "[]"], proc.stdout


def _program(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_mig_answer_of_nvidia_smi_warns_and_the_command_runs(runtime_image, tmp_path):
    """A host whose nvidia-smi reports the compute capability as [N/A] (MIG, some vGPUs;
    tests/unit/data/gpu-answers/mig-only-gpu-na.json): the preflight raised IndexError and
    the container never started. Now: a warning row, and the command runs, even with
    DLBASE_REQUIRE_GPU=1 (unknown is not a failure)."""
    import json

    case = json.loads((Path(__file__).resolve().parents[1] / "unit/data/gpu-answers/mig-only-gpu-na.json").read_text())
    answer = case["nvidia_smi"]["index,name,driver_version,compute_cap"]["output"]
    smi = _program(tmp_path / "nvidia-smi", f"#!/bin/sh\nprintf '%s' '{answer}'\n")
    proc = docker_run("--shm-size", "2g", "-e", "DLBASE_REQUIRE_GPU=1", "-v", f"{smi}:/usr/local/bin/nvidia-smi:ro",
                      runtime_image, "echo", "ran")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ran"
    assert "Traceback" not in proc.stderr and "IndexError" not in proc.stderr, proc.stderr
    lines = preflight_lines(proc)
    assert any("gpu arch" in line and "warn" in line and "compute capability" in line for line in lines), lines


def test_a_preflight_that_dies_does_not_stop_the_command(runtime_image, tmp_path):
    """The entrypoint's side of the contract: only 78 stops. A preflight killed by a signal
    (a crash in a driver library, say) is reported in one line and the command runs."""
    dying = _program(tmp_path / "preflight.py", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    proc = docker_run("--shm-size", "2g", "-v", f"{dying}:/opt/dlbase/preflight.py:ro", runtime_image, "echo", "ran")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ran"
    lines = preflight_lines(proc)
    assert len(lines) == 1 and "failed (exit 137)" in lines[0] and "runs anyway" in lines[0], proc.stderr
    stopping = _program(tmp_path / "stop.py", "raise SystemExit(78)\n")
    proc = docker_run("-v", f"{stopping}:/opt/dlbase/preflight.py:ro", runtime_image, "echo", "never")
    assert proc.returncode == EXIT_STOP and "never" not in proc.stdout, proc.stderr
