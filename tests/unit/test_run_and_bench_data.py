"""`dlbase run`'s decisions and `dlbase bench data`'s outputs, without a daemon.

The launcher's real runs (UID, shm, mount, exit code, Ctrl-C, notebook URL) are in
tests/integration/test_run.py; here a stand-in engine answers only "has the NVIDIA runtime?",
which is all `plan` asks the daemon.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlbase.bench import data as bench_data
from dlbase.engine import launcher
from dlbase.bench.data import DataBench
from dlbase.core.errors import InvalidInput, Missing


class StandInEngine:
    endpoint = "unix:///var/run/docker.sock"

    def __init__(self, nvidia: bool):
        self.nvidia = nvidia

    def has_nvidia_runtime(self) -> bool:
        return self.nvidia


def plan(nvidia: bool = False, **kw):
    args = dict(labels={}, workspace=None, user="1234:1234", shm_size=None, ipc=None, gpus="auto",
                environment={}, publish=None, notebook=False, tty=False)
    args.update(kw)
    return launcher.plan(StandInEngine(nvidia), "img", None, **args)


def test_defaults_give_dataloader_shm_and_no_gpu_without_the_runtime():
    p = plan()
    assert p.shm_size == "8g" and p.ipc_mode is None and p.gpus == "none"
    assert p.labels["dlbase.managed"] == "true"


def test_gpus_follow_the_runtime():
    assert plan(nvidia=True).gpus == "all"
    assert plan(nvidia=True, gpus="2").gpus == "2"
    with pytest.raises(Missing, match="no NVIDIA runtime"):
        plan(nvidia=False, gpus="all")


@pytest.mark.parametrize("bad", ["0", "-1", "many", "1.5"])
def test_bad_gpus(bad):
    with pytest.raises(InvalidInput):
        plan(gpus=bad)


def test_ipc_host_replaces_shm():
    p = plan(ipc="host", shm_size="16g")
    assert p.ipc_mode == "host" and p.shm_size is None


@pytest.mark.parametrize("bad", ["lots", "8 g", "-1g"])
def test_bad_shm(bad):
    with pytest.raises(InvalidInput, match="--shm-size"):
        plan(shm_size=bad)


def test_notebook_gets_a_port_a_token_and_a_url():
    p = plan(notebook=True)
    assert p.port == 8888 and p.token and len(p.token) >= 32
    assert p.environment["JUPYTER_TOKEN"] == p.token
    assert p.notebook_url == f"http://127.0.0.1:8888/lab?token={p.token}"
    assert plan(notebook=True, publish="9999").notebook_url.startswith("http://127.0.0.1:9999/lab?token=")
    assert plan(notebook=True, environment={"JUPYTER_TOKEN": "mine"}).token == "mine"
    assert "token" not in json.dumps(plan(notebook=True).summary()).replace("?token=", "")


def test_a_missing_workspace_is_named(tmp_path):
    with pytest.raises(InvalidInput, match="not a folder"):
        plan(workspace=str(tmp_path / "nope"))


def test_env_set_and_pass_through():
    env = launcher.parse_env(["A=1", "B", "C", "D="], host_env={"B": "from-host"})
    assert env == {"A": "1", "B": "from-host", "D": ""}
    with pytest.raises(InvalidInput, match="not an environment variable name"):
        launcher.parse_env(["1BAD=x"], host_env={})


def test_invoking_user_is_numeric_and_sudo_aware():
    uid, gid = launcher.invoking_user({}).split(":")
    assert uid.isdigit() and gid.isdigit()
    under_sudo = launcher.invoking_user({"SUDO_UID": "1001", "SUDO_GID": "1002"})
    import os

    assert under_sudo == ("1001:1002" if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}")


def test_jupyter_as_root_gets_allow_root():
    cmd = ["jupyter", "lab", "--ip=0.0.0.0"]
    assert launcher.notebook_command(cmd, "0:0") == [*cmd, "--allow-root"]
    assert launcher.notebook_command(cmd, "1000:1000") is None
    assert launcher.notebook_command(["python"], "0:0") is None


# ----------------------------------------------------------------------------- bench data


def sample(scale: float = 1.0, with_versus: bool = True) -> dict:
    pipes = {"colour 224px (seed: jitter+blur+normalize)": 0.4, "detection 640px + boxes (seed)": 3.0,
             "validation 640px + boxes (seed)": 6.0}
    out = {"cpu": "Test CPU", "cores": 2, "versions": {"python": "3.11.2", "torch": "2.6.0", "torchvision": "0.21.0",
                                                       "albumentations": "2.0.8", "opencv-python-headless": "4.11.0.86"},
           "pipelines": {k: {"median_ms": v * scale * 1.1, "p90_ms": v * scale * 1.5, "cpu_median_ms": v * scale,
                             "cpu_p90_ms": v * scale * 1.2, "n": 200} for k, v in pipes.items()},
           "loader": {"batch_size": 32, "rows": [
               {"num_workers": 0, "images_per_s": 100.0, "steady_images_per_s": 120.0, "efficiency": 1.0},
               {"num_workers": 2, "images_per_s": 150.0, "steady_images_per_s": 200.0, "efficiency": 0.833}]},
           "preflight": {"runs": 30, "preflight_ms": {"median_ms": 30.0, "p90_ms": 40.0},
                         "python_startup_ms": {"median_ms": 7.0}}}
    if with_versus:
        out["versus"] = {"ColorJitter": {"albumentations_ms": 1.0, "torchvision_v2_ms": 12.0,
                                         "torchvision_over_albumentations": 12.0}}
    return out


def bench(host: dict | None) -> DataBench:
    return DataBench(image="img", image_id="sha256:x", in_image=sample(), host=host,
                     host_reason=None if host else "no torch on the host", started_at="t", seconds=1.0)


def test_ratio_is_host_ms_over_image_ms_on_cpu_time():
    b = bench(sample(scale=0.98))  # host 2% faster: the image reaches 0.98 of the host's speed
    assert b.ratio_basis() == "cpu_median_ms"
    assert set(b.ratios().values()) == {0.98}
    assert b.same_packages() is True
    table = bench_data.markdown(b)
    assert "0.980 ok" in table
    slow = bench(sample(scale=0.9))
    assert "below 0.95" in bench_data.markdown(slow)


def test_host_not_measured_is_said_with_the_reason():
    table = bench_data.markdown(bench(None))
    assert "not measured" in table and "no torch on the host" in table
    assert bench(None).ratios() == {}


def test_table_marks_the_seed_claim_and_lists_workers():
    table = bench_data.markdown(bench(None))
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert rows["validation 640px + boxes (seed)"].rstrip(" |").endswith("no")
    assert rows["detection 640px + boxes (seed)"].rstrip(" |").endswith("yes")
    assert "| 2 | 150.0 | 200.0 | 0.833 | not measured |" in table
    assert "Preflight" in table and "30.0 ms" in table


def test_write_gives_json_table_and_png(tmp_path: Path):
    pytest.importorskip("matplotlib")
    jpath, mpath, ppath, _ = bench_data.write(bench(sample(scale=1.01)), tmp_path)
    data = json.loads(jpath.read_text())
    assert data["kind"] == "dlbase.bench.data" and data["want_ratio"] == 0.95
    assert mpath.read_text().startswith("# dlbase bench data: img")
    assert ppath is not None and ppath.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_best_of_rounds_keeps_the_fastest_round_of_each_measure():
    slow, fast = sample(scale=2.0), sample(scale=1.0)
    slow["loader"]["rows"][1]["images_per_s"] = 300.0  # the slow round had the better loader run
    slow["loadavg_before"], fast["loadavg_before"] = 6.0, 1.0
    best = bench_data.best_of([slow, fast])
    assert best["pipelines"]["detection 640px + boxes (seed)"]["cpu_median_ms"] == 3.0
    assert best["loader"]["rows"][1]["images_per_s"] == 300.0
    assert best["rounds"] == 2 and best["loadavg_before"] == [6.0, 1.0]
    assert bench_data.best_of([fast]) is fast


PACKAGE = Path(launcher.__file__).resolve().parents[1]


def _modules_matching(pattern: str, *, besides: str) -> list[str]:
    import re

    rx = re.compile(pattern)
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                  if str(p.relative_to(PACKAGE)) != besides and rx.search(p.read_text()))


def test_gpu_request_has_one_home():
    from dlbase.engine.containers import gpu_requests

    assert gpu_requests(None) is None
    assert gpu_requests(-1)[0]["Count"] == -1 and gpu_requests(2)[0]["Count"] == 2
    assert gpu_requests(2)[0]["Capabilities"] == [["gpu"]]
    for bad in (0, -2):
        with pytest.raises(ValueError):
            gpu_requests(bad)
    assert _modules_matching(r"DeviceRequest\(", besides="engine/containers.py") == []


def test_labels_are_read_from_an_inspect_result_in_one_place():
    assert _modules_matching(r"""get\(["']Labels["']\)""", besides="core/imageref.py") == []


def test_run_and_verify_label_their_containers_under_different_names():
    from dlbase.engine import LAUNCHED_LABEL, VERIFY_RUN_LABEL

    assert LAUNCHED_LABEL != VERIFY_RUN_LABEL
    assert plan().labels[LAUNCHED_LABEL] == "true"
    assert _modules_matching(r"\bRUN_LABEL\b", besides="engine/containers.py") == []


@pytest.mark.parametrize("good", ["1000", "1000:1000", "0", "root", "root:root", "www-data:100", "svc$", "a.b_c-d"])
def test_user_accepts_what_docker_accepts(good):
    assert launcher.check_user(good) == good
    assert plan(user=good).user == good


@pytest.mark.parametrize("bad", ["banana:", ":1", "1:2:3", "", "-x", "a b", "é", "x" * 40, "4294967295"])
def test_user_refuses_what_no_passwd_file_has(bad):
    with pytest.raises(InvalidInput, match="--user"):
        launcher.check_user(bad)


def test_published_port_listens_on_this_machine_unless_told():
    p = plan(notebook=True)
    assert (p.address, p.port) == ("127.0.0.1", 8888) and p.summary()["address"] == "127.0.0.1"
    assert plan(publish="9999").address == "127.0.0.1"
    every = plan(notebook=True, publish="0.0.0.0:9999")
    assert every.address == "0.0.0.0" and every.notebook_url.startswith("http://127.0.0.1:9999/")
    v6 = plan(notebook=True, publish="[::1]:9999")
    assert v6.address == "::1" and v6.notebook_url.startswith("http://[::1]:9999/")
    assert plan(notebook=True, publish="10.1.2.3:80").notebook_url.startswith("http://10.1.2.3:80/")
    assert plan().summary()["address"] is None  # nothing published


# ----------------------------------------------------------------------------- bench data: bad input

import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from dlbase.core.errors import DlbaseError, ExitCode  # noqa: E402

NO_DAEMON = "tcp://127.0.0.1:1"  # a command that reached the daemon would exit 6


def finishes_within(seconds: float, fn, *args, **kw):
    """fn's result, or a test failure (not a hung test) when it has not returned in time."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"did not return within {seconds} s (deadlocked?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def loud_python(tmp_path: Path, body: str) -> str:
    """An executable standing in for the host's python: runs ``body`` whatever it is given."""
    script = tmp_path / "python"
    script.write_text(f"#!{sys.executable}\nimport sys, os, time, json\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_the_host_run_reads_both_pipes_past_64_kib(tmp_path):
    """stderr was read to its end before stdout: a child filling the stdout pipe blocked
    forever while dlbase waited for stderr's end."""
    python = loud_python(tmp_path, "\n".join([
        "sys.stdout.write('o' * 200_000 + '\\n'); sys.stdout.flush()",
        "sys.stderr.write(('progress line\\n') * 20_000); sys.stderr.flush()",
        "print(json.dumps({'pipelines': {}, 'argv': sys.argv[2:]}))"]))
    said: list[str] = []
    result = finishes_within(60, bench_data._run_host, python, ["--quick"], said.append, timeout=60)
    assert result["argv"][:1] == ["--quick"] and len(said) == 20_000


def test_a_host_run_past_its_timeout_is_killed_with_what_it_started(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    python = loud_python(tmp_path, "\n".join([
        "import subprocess",
        f"p = subprocess.Popen(['sleep', '300']); open({str(pid_file)!r}, 'w').write(str(p.pid))",
        "sys.stderr.write('started\\n'); sys.stderr.flush()",
        "time.sleep(300)"]))
    with pytest.raises(DlbaseError) as info:
        finishes_within(60, bench_data._run_host, python, [], lambda _m: None, timeout=2)
    assert "did not finish within 2 s" in info.value.message and info.value.hint
    assert info.value.details == ["started"]
    grandchild = int(pid_file.read_text())
    for _ in range(50):  # killed; the zombie is reaped by init shortly after
        try:
            os.kill(grandchild, 0)
            if open(f"/proc/{grandchild}/stat").read().split()[2] == "Z":
                break
        except (ProcessLookupError, FileNotFoundError):
            break
        import time

        time.sleep(0.1)
    else:
        pytest.fail("the benchmark's own child outlived the timeout")


def test_a_host_run_that_fails_says_so_with_its_last_lines(tmp_path):
    python = loud_python(tmp_path, "sys.stderr.write('ImportError: no cv2\\n'); sys.exit(3)")
    with pytest.raises(DlbaseError, match=r"failed \(exit 3\)") as info:
        bench_data._run_host(python, [], lambda _m: None, timeout=30)
    assert info.value.details == ["ImportError: no cv2"]


def test_an_image_dlbase_did_not_build_is_named_before_anything_runs():
    class NotDlbase:
        def inspect_image(self, _ref):
            return {"Id": "sha256:" + "a" * 64, "Config": {"Labels": {"maintainer": "someone"}}}

    with pytest.raises(InvalidInput) as info:  # the stand-in has no run(): nothing may start
        bench_data.measure(object(), NotDlbase(), "busybox:latest", host_python=None, host=False)
    assert "busybox:latest is not a dlbase image" in info.value.message
    assert "dlbase build" in info.value.hint and "/tmp" not in info.value.message
    bench_data.require_dlbase_image({"Config": {"Labels": {"dlbase.variant": "v"}}}, "mine")  # no error


def test_the_benchmark_files_come_from_the_installed_suite_not_a_checkout(tmp_path):
    from dlbase import suites

    class Elsewhere:  # a project folder that is not dlbase's checkout
        root = tmp_path

    files = bench_data._script_files(Elsewhere())
    assert set(files) == set(bench_data.SCRIPT_FILES)
    assert files["bench_data.py"] == (suites.image_dir() / "bench_data.py").read_bytes()


def test_the_benchmark_ships_every_suite_module_its_scripts_import():
    """The scripts run in the container from a bare folder: a module of the suite they
    import and the benchmark does not copy fails there (ModuleNotFoundError), in every image."""
    import ast

    from dlbase import suites

    src = suites.image_dir()
    local = {p.stem for p in src.glob("*.py")}
    imported = set()
    for name in bench_data.SCRIPT_FILES:
        for node in ast.walk(ast.parse((src / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
    assert {f"{m}.py" for m in imported & local} <= set(bench_data.SCRIPT_FILES)


@pytest.mark.parametrize("blocker, args", [(".dlbase", []), (".dlbase/bench", []),
                                           ("plots", ["--png", "plots/out.png"])])
def test_an_unwritable_output_stops_bench_data_before_any_work(cli, project_copy, monkeypatch, blocker, args):
    monkeypatch.setenv("DOCKER_HOST", NO_DAEMON)
    monkeypatch.chdir(project_copy)
    (project_copy / blocker).parent.mkdir(parents=True, exist_ok=True)
    (project_copy / blocker).write_text("a file in the way")
    res = cli("bench", "data", "--no-host", *args, "--json")
    assert res.code == ExitCode.INVALID_INPUT, res.output
    doc = json.loads(res.out)
    assert "not a folder" in doc["message"] and doc["hint"] and "Traceback" not in res.output
