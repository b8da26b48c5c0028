"""`dlbase verify` against the real default image, and against broken images made from it.

The broken images are 1-3 line Dockerfiles on top of the session's default image (so
each builds in seconds): a root default user, a label that lies, a second (GUI) OpenCV,
a torchvision that does not go with torch. The two pip installs use one wheel each,
downloaded on the host (cached under .dlbase/test-wheels/) and served to the build from
a loopback wheelhouse, as `dlbase build` does. verify must reject each one, exit 9 and
name the check that failed. Every container verify starts carries this test's label, so
"nothing left behind" is checked by that label after every run, Ctrl-C included.

The notebook check is exercised with a small JupyterLab stand-in (a stdlib HTTP server
that honours JUPYTER_TOKEN like jupyter_server does) in an image labelled as the notebook
flavor: installing the real JupyterLab into a test image would cost more than the rest of
this file. The probe function itself is tested against that server without Docker in
tests/unit/test_verify_parts.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from dlbase.verify import records
from dlbase.build import wheelhouse
from dlbase.engine import Engine
from dlbase.define.project import Project

from tests.support.fake_jupyter import FAKE_JUPYTER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WHEEL_CACHE = ROOT / ".dlbase" / "test-wheels"
CHECK_ROOT = "default user is not root"
CHECK_LABELS = "labels equal installed versions"
CHECK_OPENCV = "only headless OpenCV"
CHECK_PAIR = "torch/torchvision pair"
CHECK_NOTEBOOK = "JupyterLab on 8888 requires its token"
CHECK_GPU_HOST = "GPU visible in the container"




# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def image_id(default_image: dict) -> str:
    return default_image["image_id"]


@pytest.fixture(scope="module")
def derive(engine: Engine, image_id: str, session_labels: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """derive("USER root", files={...}, wheels=DIR) -> ID of an image built FROM the default
    image with those lines (session-labelled, so the session finaliser removes it)."""

    def build(*lines: str, files: dict[str, str] | None = None, wheels: Path | None = None) -> str:
        ctx = tmp_path_factory.mktemp("derived")
        (ctx / "Dockerfile").write_text("\n".join([f"FROM {image_id}", *lines]) + "\n")
        for name, text in (files or {}).items():
            (ctx / name).write_text(text)
        if wheels is None:
            return engine.build(ctx, labels=dict(session_labels))
        with wheelhouse.serve(wheels) as url:
            return engine.build(ctx, buildargs={"WHEELHOUSE": url}, labels=dict(session_labels),
                                network_mode="host")

    return build


def wheel(requirement: str) -> Path:
    """A folder holding the one wheel of ``requirement`` for the image (cp311, manylinux x86_64),
    downloaded once on the host (PyPI is not reachable from containers here)."""
    name = requirement.replace("==", "-")
    folder = WHEEL_CACHE / name
    if folder.is_dir() and any(folder.glob("*.whl")):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                           "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
                           "--platform", "manylinux_2_17_x86_64", "-d", str(folder), requirement],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not any(folder.glob("*.whl")):
        pytest.skip(f"cannot download {requirement} from PyPI on the host: {proc.stderr.strip()[-300:]}")
    return folder


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, report_file: Path, junit_file: Path):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.report = json.loads(report_file.read_text()) if report_file.is_file() else None
        self.junit_file = junit_file

    def row(self, check: str) -> dict:
        rows = [r for r in self.report["checks"] if r["check"] == check]
        assert rows, f"no row {check!r} in {[r['check'] for r in self.report['checks']]}"
        return rows[0]

    def __repr__(self) -> str:  # what pytest shows when an assertion fails
        return f"exit {self.code}\n{self.out[-6000:]}\n{self.err[-3000:]}"


@pytest.fixture(scope="module")
def session_label(session_labels: dict[str, str]) -> str:
    """KEY=VALUE of the session label, for `--label` (the finaliser removes what carries it)."""
    return ",".join(f"{k}={v}" for k, v in session_labels.items())


@pytest.fixture
def run_verify(engine: Engine, tmp_path: Path, session_label: str):
    """Run the real CLI in a subprocess; afterwards, assert no container of it is left."""
    label = f"dlbase.verify-test={uuid.uuid4()}"
    used: list[str] = []

    def run(*args: str, timeout: float = 600) -> Run:
        report, junit = tmp_path / f"report-{len(used)}.json", tmp_path / f"junit-{len(used)}.xml"
        used.append(label)
        cmd = [sys.executable, "-m", "dlbase", "verify", *args, "--label", label, "--label", session_label,
               "--report", str(report), "--junit", str(junit)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        result = Run(proc, report, junit)
        print(f"$ dlbase verify {' '.join(args)}  -> exit {result.code}\n{result.out}")  # shown with -s / on failure
        assert engine.containers_with_label(label) == [], "verify left a container behind"
        return result

    run.label = label  # type: ignore[attr-defined]
    return run


# --------------------------------------------------------------------------- the default image


def test_verify_passes_the_default_image_and_records_it(image_id: str, run_verify, engine: Engine) -> None:
    res = run_verify(image_id)
    assert res.code == 0, res
    rep = res.report
    assert rep["passed"] and not rep["partial"] and rep["image_id"] == image_id
    # both halves ran: every host check, and the in-image suite grouped per file
    assert res.row(CHECK_ROOT)["result"] == "passed"
    assert res.row(CHECK_LABELS)["result"] == "passed"
    assert res.row("versions (test_versions.py)")["result"] == "passed"
    assert res.row("DDP (test_ddp.py)")["counts"].get("passed", 0) >= 1
    assert rep["counts"]["image"]["passed"] > 1000
    assert len(res.out.splitlines()) < 60, "the summary must stay short (counts per file, not one row per test)"
    if not engine.has_nvidia_runtime():
        gpu = res.row("GPU (test_gpu.py)")
        assert gpu["result"] == "skipped" and "GPU test on a CPU host" in gpu["reason"]
        assert res.row(CHECK_GPU_HOST)["result"] == "skipped"
        assert "GPU test on a CPU host" in res.out and "skipped" in res.out
    assert "PASSED" in res.out
    # JUnit: one document, both halves, parseable
    tree = ET.parse(res.junit_file).getroot()
    suites = {s.get("name").split(":")[0] for s in tree.iter("testsuite")}
    assert suites == {"host", "image"} and int(tree.get("tests")) > 1000
    # recorded by image ID: publishing can look it up
    rec = records.lookup(Project.discover(ROOT), image_id)
    assert rec is not None and rec["passed"] is True and rec["require_gpu"] is False
    assert rec["report_file"] == str(res.junit_file.with_name("report-0.json"))


def test_require_gpu_turns_gpu_skips_into_failures(derive, run_verify, engine: Engine) -> None:
    if engine.has_nvidia_runtime():
        pytest.skip("this host has the NVIDIA runtime: GPU checks run instead of skipping")
    copy = derive("LABEL dlbase.test-purpose=require-gpu")  # same content; keeps the default image's record
    res = run_verify(copy, "--require-gpu", "-k", "gpu")
    assert res.code == 9, res
    failed = res.report["failed_checks"]
    assert CHECK_GPU_HOST in failed and "GPU (test_gpu.py)" in failed, failed
    assert "--require-gpu given" in res.row("GPU (test_gpu.py)")["failures"][0]["message"]
    assert "GPU (test_gpu.py)" in res.err  # the error line names the checks
    rec = records.lookup(Project.discover(ROOT), copy)
    assert rec["passed"] is False and rec["require_gpu"] is True


def test_missing_variant_image_says_how_to_build_it(engine: Engine) -> None:
    proc = subprocess.run([sys.executable, "-m", "dlbase", "verify", "torch2.6-cu126-runtime-ubuntu22.04"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 14, proc.stderr
    assert "dlbase build torch2.6-cu126-runtime-ubuntu22.04" in proc.stderr


# --------------------------------------------------------------------------- broken images


@pytest.mark.parametrize(("case", "check"), [
    ("root user", CHECK_ROOT),
    ("label that lies", CHECK_LABELS),
    ("both OpenCV packages", CHECK_OPENCV),
])
def test_verify_rejects_a_broken_image(case: str, check: str, derive, run_verify) -> None:
    if case == "root user":
        broken = derive("USER root")
    elif case == "label that lies":
        broken = derive("LABEL dlbase.torch=2.5.0")
    else:
        broken = derive("USER root", "ARG WHEELHOUSE",
                        'RUN /opt/venv/bin/python -m pip install -q --no-deps --no-index --find-links "$WHEELHOUSE" '
                        "opencv-python==4.11.0.86", "USER 1000:1000", wheels=wheel("opencv-python==4.11.0.86"))
    res = run_verify(broken, "--only", "host")
    assert res.code == 9, res
    assert check in res.report["failed_checks"], res
    assert check in res.err  # "error: ... failed verification: <checks>"
    row = res.row(check)
    assert row["result"] == "failed" and row["reason"]
    if case == "root user":
        assert "root" in row["reason"]
        assert res.row(CHECK_LABELS)["result"] == "passed"  # only what is broken fails
    if case == "label that lies":
        assert "dlbase.torch=2.5.0 but torch is 2.6.0" in row["reason"]
    if case == "both OpenCV packages":
        assert "opencv-python==4.11.0.86" in row["reason"]
        assert res.row(CHECK_ROOT)["result"] == "passed"


def test_verify_rejects_a_torchvision_that_does_not_go_with_torch(derive, run_verify) -> None:
    """torchvision 0.20.1 (made for torch 2.5.1) beside torch 2.6.0: the host check names the
    pair, and the image's own version tests fail too (both halves run, narrowed by -k)."""
    broken = derive("USER root", "ARG WHEELHOUSE",
                    'RUN /opt/venv/bin/python -m pip install -q --no-deps --no-index --find-links "$WHEELHOUSE" '
                    "torchvision==0.20.1", "USER 1000:1000", wheels=wheel("torchvision==0.20.1"))
    res = run_verify(broken, "-k", "pair or versions")
    assert res.code == 9, res
    failed = res.report["failed_checks"]
    assert CHECK_PAIR in failed and "versions (test_versions.py)" in failed, failed
    assert "torch 2.6.0 with torchvision 0.20.1 is not a compatible pair" in res.row(CHECK_PAIR)["reason"]
    inner = [f["test"] for f in res.row("versions (test_versions.py)")["failures"]]
    assert "test_versions.py::test_torch_torchvision_torchaudio_are_a_compatible_pair" in inner
    assert "x test_versions.py::test_torch_torchvision_torchaudio_are_a_compatible_pair" in res.out


# --------------------------------------------------------------------------- notebook flavor


def _notebook_like(derive, *, open_server: bool) -> str:
    return derive("COPY fake_jupyter.py /opt/dlbase/fake_jupyter.py",
                  *(["ENV FAKE_JUPYTER_OPEN=1"] if open_server else []),
                  "EXPOSE 8888",
                  "LABEL dlbase.flavor=notebook dlbase.jupyter=true dlbase.variant=torch2.6-cu124-notebook-debian12",
                  'CMD ["python", "/opt/dlbase/fake_jupyter.py"]', files={"fake_jupyter.py": FAKE_JUPYTER})


def test_notebook_check_passes_a_server_that_requires_its_token(derive, run_verify) -> None:
    res = run_verify(_notebook_like(derive, open_server=False), "--only", "host", "-k", "notebook or labels")
    assert res.code == 0, res
    assert res.row(CHECK_NOTEBOOK)["result"] == "passed"


def test_notebook_check_fails_a_server_that_ignores_its_token(derive, run_verify) -> None:
    res = run_verify(_notebook_like(derive, open_server=True), "--only", "host", "-k", "notebook")
    assert res.code == 9, res
    assert CHECK_NOTEBOOK in res.report["failed_checks"]
    assert "does not require its token" in res.row(CHECK_NOTEBOOK)["reason"]


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("where", ["host", "image"])
def test_ctrl_c_during_verify_leaves_no_container(where: str, image_id: str, engine: Engine,
                                                  session_label: str) -> None:
    label = f"dlbase.verify-test={uuid.uuid4()}"
    proc = subprocess.Popen([sys.executable, "-m", "dlbase", "verify", image_id, "--only", where,
                             "--label", label, "--label", session_label],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not engine.containers_with_label(label):
            assert proc.poll() is None and time.monotonic() < deadline, "verify never started its container"
            time.sleep(0.2)
        time.sleep(4)  # well inside the half: testinfra is running / the in-image suite is importing torch
        assert proc.poll() is None, "verify finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert engine.containers_with_label(label) == []
