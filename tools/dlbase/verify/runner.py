"""`dlbase verify`: prove that an image is what its labels and its variant say.

Two halves run against one container started the way these images must run (GPUs when
the host has the NVIDIA runtime, a large /dev/shm for DataLoader workers and NCCL):

* from the host, the testinfra checks of ``tests/infra`` (``pytest --hosts=docker://...``)
  against the container, kept alive with ``sleep infinity``; what they must expect comes
  from a JSON file this module writes (labels, config, the variant's facts);
* inside the image, the suite the image carries at /opt/dlbase/tests, run as the image's
  default user; its JUnit XML is copied out of the container.

The per-test results of both halves are folded into one short summary (one row per
host check, one row per in-image test file plus a row per failure), a merged JUnit XML
and a JSON report, and the outcome is recorded against the image ID (records.py) so that
publishing can refuse an image that was never verified.

Nothing here prints; progress goes to a ``say`` callback. Every container this module
(or the host half it launches) starts carries ``dlbase.verify-run=<id>``, and whatever
carries it is removed before :func:`verify` returns -- on success, failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import requests

from dlbase import suites
from dlbase.verify import records
from dlbase.core.fsutil import write_json_atomic
from dlbase.engine import VERIFY_RUN_LABEL, Engine
from dlbase.core.errors import Interrupted, InvalidInput, Missing
from dlbase.core.imageref import labels_of, short_id
from dlbase.examine.local_image import locate
from dlbase.core.project import Project
from dlbase.define.spec import TESTS_IN_IMAGE, BuildSpec
from dlbase.core.sizes import DEFAULT_SHM
from dlbase.trust import predicates
from dlbase.trust.keys import SECRET_ENV

PURPOSE_LABEL = "dlbase.purpose"
IMAGE_JUNIT = "/tmp/dlbase-verify/junit.xml"
HOST_SUITE = "tests/infra"  # the name the host half's suite goes by in records and attestations
IMAGE_SUITE_TIMEOUT = 1800
HOST_SUITE_TIMEOUT = 900
EXPECT_ENV = "DLBASE_VERIFY_EXPECT"
CHECKS_ENV = "DLBASE_VERIFY_CHECKS_OUT"
ONLY = ("host", "image")

# In-image test files -> the check people read in the summary.
_FILE_CHECKS = {
    "test_versions": "versions",
    "test_gpu": "GPU",
    "test_dataloader": "DataLoader",
    "test_ddp": "DDP",
    "test_seed_pipelines": "augmentation: seed pipelines",
}


# --------------------------------------------------------------------------- values


@dataclass
class Case:
    """One test case read from a JUnit XML file."""

    file: str  # e.g. "test_versions.py"
    name: str  # test function name, parameters kept ("test_flip[hflip]")
    outcome: str  # passed | failed | error | skipped | xfailed
    seconds: float
    message: str = ""  # failure/skip message, first line

    @property
    def nodeid(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class Row:
    """One line of the summary table (and of the JSON report)."""

    half: str  # host | image
    check: str
    result: str  # passed | failed | skipped | error
    seconds: float
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    detail: bool = False  # a failure listed under its file's row

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VerifyOptions:
    require_gpu: bool = False
    gpus: bool | None = None  # None: when the daemon has the NVIDIA runtime
    shm_size: str | None = DEFAULT_SHM
    ipc_host: bool = False
    only: str | None = None  # "host" | "image" | None (both)
    keyword: str | None = None  # pytest -k for both halves
    junit_file: Path | None = None
    report_file: Path | None = None
    labels: dict[str, str] = field(default_factory=dict)  # extra labels on verify's containers
    image_timeout: int = IMAGE_SUITE_TIMEOUT
    host_timeout: int = HOST_SUITE_TIMEOUT

    @property
    def partial(self) -> bool:
        return self.only is not None or bool(self.keyword)


@dataclass
class Target:
    ref: str
    image_id: str
    inspect: dict
    spec: BuildSpec | None
    variant: str | None

    @property
    def labels(self) -> dict[str, str]:
        return labels_of(self.inspect)


@dataclass
class VerifyReport:
    image: str
    image_id: str
    variant: str | None
    flavor: str | None
    passed: bool
    partial: bool
    require_gpu: bool
    gpus: bool
    shm: str
    rows: list[Row]
    seconds: float
    started_at: str
    junit_file: str | None = None
    report_file: str | None = None
    record_file: str | None = None
    host_exit: int | None = None
    image_exit: int | None = None
    suites: dict[str, dict] = field(default_factory=dict)  # the suites that ran -> their digests
    host: dict | None = None  # this host's facts, taken when verify ran

    @property
    def failed_checks(self) -> list[str]:
        return [r.check for r in self.rows if r.result in ("failed", "error") and not r.detail]

    @property
    def passed_checks(self) -> list[str]:
        return [r.check for r in self.rows if r.result == "passed" and not r.detail]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for half in ONLY:
            c: Counter[str] = Counter()
            for row in self.rows:
                if row.half != half or row.detail:
                    continue
                if row.counts:
                    c.update(row.counts)
                else:
                    c[row.result] += 1
            out[half] = dict(c)
        return out

    def to_dict(self) -> dict:
        return {"kind": "dlbase.verify", "ok": self.passed, "image": self.image, "image_id": self.image_id,
                "variant": self.variant, "flavor": self.flavor, "passed": self.passed, "partial": self.partial,
                "require_gpu": self.require_gpu, "gpus": self.gpus, "shm": self.shm,
                "started_at": self.started_at, "seconds": self.seconds, "counts": self.counts(),
                "failed_checks": self.failed_checks, "checks": [r.to_dict() for r in self.rows],
                "junit_file": self.junit_file, "report_file": self.report_file,
                "record_file": self.record_file, "host_exit": self.host_exit, "image_exit": self.image_exit,
                "suites": self.suites, "host": self.host}


# --------------------------------------------------------------------------- target


def resolve(project: Project, engine: Engine, name: str | None) -> Target:
    """A variant name (its moving tag), an image reference or ID -> the image to verify.
    No name: the matrix's default variant."""
    found = locate(project, engine, name)
    return Target(ref=found.ref, image_id=found.image_id, inspect=found.inspect, spec=found.spec,
                  variant=found.variant)


def expectations(project: Project, target: Target, *, container: str, gpus: bool, require_gpu: bool,
                 run_labels: dict[str, str], history: list[dict]) -> dict:
    """What the host half must find, as plain data (tests/infra reads it as JSON)."""
    config = target.inspect.get("Config") or {}
    labels = target.labels
    flavor_name = labels.get("dlbase.flavor")
    flavor = project.matrix.flavors.get(flavor_name) if flavor_name else None
    spec = target.spec
    return {
        "image": target.ref,
        "image_id": target.image_id,
        "container": container,
        "labels": labels,
        "config_user": config.get("User") or "",
        "env": dict(item.split("=", 1) for item in (config.get("Env") or []) if "=" in item),
        "cmd": config.get("Cmd") or [],
        "entrypoint": config.get("Entrypoint") or [],
        "exposed_ports": sorted((config.get("ExposedPorts") or {}).keys()),
        "history": [str(h.get("CreatedBy", "")) for h in history],
        "flavor": flavor_name,
        "flavor_known": flavor is not None,
        "compiler": bool(flavor.compiler) if flavor else False,
        "jupyter": bool(flavor.jupyter) if flavor else False,
        "variant": spec.name if spec else None,
        "variant_labels": {k: v for k, v in spec.static_labels().items() if k.startswith("dlbase.")} if spec else None,
        "require_cuda": spec.require_cuda if spec else None,
        "compat_pairs": project.compat.pairs(),
        "gpus": gpus,
        "require_gpu": require_gpu,
        "run_labels": run_labels,
        "tests_in_image": TESTS_IN_IMAGE,
    }


# --------------------------------------------------------------------------- JUnit


def _strip_param(name: str) -> str:
    return name.split("[", 1)[0]


def _first_line(text: str | None, limit: int = 300) -> str:
    """The readable part of a failure/skip message: the assertion's own text (all its
    lines, joined), without pytest's "assert ..." introspection that follows it."""
    text = (text or "").strip()
    for prefix in ("AssertionError: ", "Failed: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if lines and line.startswith(("assert ", "+ ", "where ", "+  where")):
            break
        lines.append(line)
    out = " | ".join(lines)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _case_file(classname: str, fallback: str = "") -> str:
    """``tests.image.test_versions`` / ``test_versions.TestX`` -> ``test_versions.py``."""
    parts = [p for p in classname.split(".") if p]
    for part in parts:
        if part.startswith("test_"):
            return f"{part}.py"
    return f"{parts[-1]}.py" if parts else fallback


def parse_junit(data: bytes | str) -> list[Case]:
    """Every testcase of a pytest JUnit XML file (any junit_family), in file order."""
    root = ET.fromstring(data)
    cases: list[Case] = []
    for tc in root.iter("testcase"):
        file = _case_file(tc.get("classname", ""), tc.get("file", ""))
        seconds = float(tc.get("time") or 0)
        outcome, message = "passed", ""
        for child in tc:
            if child.tag == "failure":
                outcome, message = "failed", child.get("message") or child.text or ""
            elif child.tag == "error":
                outcome, message = "error", child.get("message") or child.text or ""
            elif child.tag == "skipped":
                if (child.get("type") or "") == "pytest.xfail":
                    outcome = "xfailed"
                else:
                    outcome = "skipped"
                message = child.get("message") or child.text or ""
                message = re.sub(r"^(Skipped|XFailed|xfail):\s*", "", message.strip())
        cases.append(Case(file=file, name=tc.get("name", ""), outcome=outcome, seconds=seconds,
                          message=_first_line(message)))
    return cases


def _file_check(file: str) -> str:
    stem = file.removesuffix(".py")
    if stem in _FILE_CHECKS:
        return _FILE_CHECKS[stem]
    if stem.startswith("test_aug_"):
        return "augmentation: " + stem.removeprefix("test_aug_").replace("_", " ")
    return stem.removeprefix("test_").replace("_", " ")


def host_rows(cases: list[Case], check_names: dict[str, str]) -> list[Row]:
    """One row per host check (a testinfra test), named by its ``check`` marker."""
    rows = []
    for case in cases:
        check = check_names.get(_strip_param(case.name)) or _strip_param(case.name)
        result = "skipped" if case.outcome in ("skipped", "xfailed") else case.outcome
        rows.append(Row(half="host", check=check, result=result, seconds=round(case.seconds, 2),
                        reason=case.message if result != "passed" else "",
                        failures=[{"test": case.nodeid, "message": case.message}]
                        if result in ("failed", "error") else []))
    return rows


def image_rows(cases: list[Case]) -> list[Row]:
    """One row per in-image test file (counts, skip reasons), then one row per failure."""
    by_file: OrderedDict[str, list[Case]] = OrderedDict()
    for case in cases:
        by_file.setdefault(case.file, []).append(case)
    rows: list[Row] = []
    for file, group in by_file.items():
        counts = Counter(c.outcome for c in group)
        failed = [c for c in group if c.outcome in ("failed", "error")]
        skipped = [c for c in group if c.outcome == "skipped"]
        if failed:
            result = "failed"
        elif counts.get("passed", 0) or counts.get("xfailed", 0):
            result = "passed"
        else:
            result = "skipped"
        parts = [f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: _ORDER.get(kv[0], 9))]
        reasons = Counter(c.message for c in skipped)
        if len(reasons) == 1:
            reason_text = f"skipped: {next(iter(reasons))}"
        else:
            reason_text = "; ".join(f"{n} skipped: {msg}" for msg, n in reasons.most_common())
        rows.append(Row(half="image", check=f"{_file_check(file)} ({file})", result=result,
                        seconds=round(sum(c.seconds for c in group), 2),
                        reason=f"{', '.join(parts)}" + (f" - {reason_text}" if reason_text else ""),
                        counts=dict(counts),
                        failures=[{"test": c.nodeid, "message": c.message} for c in failed]))
        for c in failed:
            rows.append(Row(half="image", check=f"  x {c.nodeid}", result=c.outcome, seconds=round(c.seconds, 2),
                            reason=c.message, detail=True))
    return rows


_ORDER = {"passed": 0, "failed": 1, "error": 2, "skipped": 3, "xfailed": 4}


def merge_junit(parts: list[tuple[str, bytes | None]], name: str) -> bytes:
    """One ``<testsuites>`` holding every half's suites, renamed "host: ..." / "image: ..."."""
    root = ET.Element("testsuites", name=name)
    totals = Counter()
    for half, data in parts:
        if not data:
            continue
        src = ET.fromstring(data)
        suites = [src] if src.tag == "testsuite" else list(src.iter("testsuite"))
        for suite in suites:
            suite.set("name", f"{half}: {suite.get('name', 'pytest')}")
            for key in ("tests", "failures", "errors", "skipped"):
                totals[key] += int(suite.get(key) or 0)
            totals["time"] += float(suite.get("time") or 0)
            root.append(suite)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    root.set("time", f"{totals['time']:.3f}")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --------------------------------------------------------------------------- Jupyter


@dataclass
class JupyterProbe:
    ok: bool
    problems: list[str]
    version: str | None = None
    seconds: float = 0.0


def probe_jupyter(base_url: str, token: str, *, timeout: float = 90.0, interval: float = 0.5) -> JupyterProbe:
    """Does a Jupyter server at base_url serve JupyterLab, and only to someone with the token?

    Waits until ``GET /api`` (public: the server's version) answers, then requires that
    ``/api/status`` refuses a request without the token (401/403), answers one with it,
    and that ``/lab`` serves JupyterLab with the token.
    """
    base = base_url.rstrip("/")
    started = time.monotonic()
    deadline = started + timeout
    version = None
    last = "no answer"
    with requests.Session() as http:
        while True:
            try:
                resp = http.get(f"{base}/api", timeout=5)
                if resp.status_code == 200:
                    with contextlib.suppress(ValueError):
                        version = resp.json().get("version")
                    break
                last = f"GET /api answered {resp.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            if time.monotonic() > deadline:
                return JupyterProbe(False, [f"no Jupyter server answered at {base} within {timeout:.0f}s ({last})"],
                                    seconds=round(time.monotonic() - started, 2))
            time.sleep(interval)
        problems = []
        try:
            anon = http.get(f"{base}/api/status", timeout=10, allow_redirects=False)
            if anon.status_code not in (401, 403):
                problems.append(f"GET /api/status without a token answered {anon.status_code}, not 401/403: "
                                "the server does not require its token")
            authed = http.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=10)
            if authed.status_code != 200:
                problems.append(f"GET /api/status with the token answered {authed.status_code}, not 200")
            lab = http.get(f"{base}/lab", params={"token": token}, timeout=20)
            if lab.status_code != 200 or "jupyterlab" not in lab.text.lower():
                problems.append(f"GET /lab with the token answered {lab.status_code} without a JupyterLab page")
        except requests.RequestException as exc:
            problems.append(f"request to {base} failed: {exc}")
    return JupyterProbe(not problems, problems, version=version, seconds=round(time.monotonic() - started, 2))


# --------------------------------------------------------------------------- running


def _child_env() -> dict[str, str]:
    """The host half's environment: this one without pytest's own settings and without the
    signing secrets (already read and removed by then; dropped here too, so no code path
    hands a passphrase or a key to the test suite)."""
    env = dict(os.environ)
    for name in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", *SECRET_ENV):
        env.pop(name, None)
    return env


def _run_interruptible(cmd: list[str], *, env: dict[str, str], timeout: float, cwd: Path) -> tuple[int | None, str]:
    """Run a child to completion; on Ctrl-C pass SIGINT on (it cleans up what it started),
    give it a moment, then kill it, and re-raise."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out
    except BaseException:
        with contextlib.suppress(Exception):
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise


def _host_half(project: Project, expect: dict, container: str, workdir: Path, options: VerifyOptions
               ) -> tuple[list[Row], bytes | None, int | None]:
    infra = suites.infra_dir()
    if not (infra / "conftest.py").is_file():
        raise Missing(f"the host-side checks are missing from the installed dlbase ({infra})",
                      hint=suites.INSTALL_HINT)
    expect_file = workdir / "expect.json"
    expect_file.write_text(json.dumps(expect, indent=2))
    checks_file = workdir / "checks.json"
    junit = workdir / "host.xml"
    cmd = [sys.executable, "-m", "pytest", str(infra), f"--hosts=docker://root@{container}",
           "-c", str(infra / "pytest.ini"), "--rootdir", str(infra), "-p", "no:cacheprovider",
           "-q", "--junitxml", str(junit), "-o", "junit_suite_name=testinfra"]
    if options.keyword:
        cmd += ["-k", options.keyword]
    env = {**_child_env(), EXPECT_ENV: str(expect_file), CHECKS_ENV: str(checks_file)}
    rc, out = _run_interruptible(cmd, env=env, timeout=options.host_timeout, cwd=project.root)
    data = junit.read_bytes() if junit.is_file() else None
    if rc is None:
        return [Row("host", "host checks (testinfra)", "error", options.host_timeout,
                    f"timed out after {options.host_timeout}s")], data, rc
    if rc == 5 and options.keyword:
        return [], data, rc  # -k selected no host check
    if data is None or rc not in (0, 1):
        tail = " | ".join(out.strip().splitlines()[-6:])
        return [Row("host", "host checks (testinfra)", "error", 0.0, f"pytest exit {rc}: {tail}")], data, rc
    names = json.loads(checks_file.read_text()) if checks_file.is_file() else {}
    return host_rows(parse_junit(data), names), data, rc


def _image_half(engine: Engine, container: str, options: VerifyOptions) -> tuple[list[Row], bytes | None, int | None]:
    cmd = ["timeout", "-k", "15", str(options.image_timeout), "python", "-m", "pytest", TESTS_IN_IMAGE,
           "-p", "no:cacheprovider", "-q", f"--junitxml={IMAGE_JUNIT}", "-o", "junit_suite_name=image"]
    if options.require_gpu:
        cmd.append("--require-gpu")
    if options.keyword:
        cmd += ["-k", options.keyword]
    started = time.monotonic()
    res = engine.exec(container, cmd)  # as the image's default user (the container's)
    seconds = round(time.monotonic() - started, 1)
    if res.exit_code == 124:
        return [Row("image", "in-image suite", "error", seconds,
                    f"timed out after {options.image_timeout}s")], None, res.exit_code
    if res.exit_code == 5 and options.keyword:
        return [], None, res.exit_code
    try:
        data = engine.read_file(container, IMAGE_JUNIT)
    except Missing:
        data = None
    if data is None or res.exit_code not in (0, 1):
        tail = " | ".join(res.output.strip().splitlines()[-6:])
        return [Row("image", "in-image suite", "error", seconds,
                    f"pytest exit {res.exit_code}: {tail or 'no output'}")], data, res.exit_code
    return image_rows(parse_junit(data)), data, res.exit_code


def verify(project: Project, engine: Engine, target: Target, options: VerifyOptions, *,
           say: Callable[[str], None] = lambda _m: None) -> VerifyReport:
    """Run both halves against one container; write JUnit, JSON report and the record.

    Returns the report whatever the outcome (``passed`` tells); raises only for what
    stops verification itself (daemon gone, Ctrl-C -> Interrupted), and in every case
    removes the containers it started.
    """
    if options.only is not None and options.only not in ONLY:
        raise InvalidInput(f"--only must be one of {', '.join(ONLY)}")
    engine.ping()
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    gpus = engine.has_nvidia_runtime() if options.gpus is None else options.gpus
    run_id = str(uuid.uuid4())
    run_labels = {**options.labels, PURPOSE_LABEL: "verify", VERIFY_RUN_LABEL: run_id}
    shm = "host IPC" if options.ipc_host else (options.shm_size or "docker default (64m)")
    say(f"verifying {target.ref} ({target.image_id[:19]}): "
        f"{'GPUs: all' if gpus else 'no GPU (the daemon has no NVIDIA runtime)'}, /dev/shm: {shm}")
    rows: list[Row] = []
    host_xml = image_xml = None
    host_rc = image_rc = None
    suites_ran: dict[str, dict] = {}
    host_now = predicates.host_facts(engine, None)  # the host as it is while the checks run
    try:
        with tempfile.TemporaryDirectory(prefix="dlbase-verify-") as tmp, \
                engine.started(target.image_id, ["sleep", "infinity"], gpus=gpus,
                               shm_size=None if options.ipc_host else options.shm_size,
                               ipc_mode="host" if options.ipc_host else None,
                               labels=run_labels, ready_timeout=30) as box:
            if options.only in (None, "host"):
                say(f"host checks (testinfra) against docker://{box.name}")
                expect = expectations(project, target, container=box.name, gpus=gpus,
                                      require_gpu=options.require_gpu, run_labels=run_labels,
                                      history=engine.image_history(target.image_id))
                host, host_xml, host_rc = _host_half(project, expect, box.name, Path(tmp), options)
                suites_ran[HOST_SUITE] = predicates.suite_digest(predicates.folder_files(suites.infra_dir()))
                rows += host
            if options.only in (None, "image"):
                say(f"in-image suite ({TESTS_IN_IMAGE}) as the image's default user")
                image, image_xml, image_rc = _image_half(engine, box.id, options)
                with contextlib.suppress(Missing):  # no suite in the image: its half is an error row already
                    suites_ran[TESTS_IN_IMAGE] = predicates.suite_digest(engine.read_files(box.id, TESTS_IN_IMAGE))
                rows += image
    except KeyboardInterrupt:
        raise Interrupted(f"verify of {target.ref} interrupted; its containers were removed") from None
    finally:
        with contextlib.suppress(Exception):
            engine.cleanup(f"{VERIFY_RUN_LABEL}={run_id}")  # e.g. a Jupyter container of a killed host half
    passed = bool(rows) and not any(r.result in ("failed", "error") for r in rows)
    flavor = target.labels.get("dlbase.flavor")
    report = VerifyReport(image=target.ref, image_id=target.image_id, variant=target.variant, flavor=flavor,
                          passed=passed, partial=options.partial, require_gpu=options.require_gpu, gpus=gpus,
                          shm=shm, rows=rows, seconds=round(time.monotonic() - t0, 1), started_at=started_at,
                          host_exit=host_rc, image_exit=image_rc, suites=suites_ran, host=host_now)
    short = short_id(target.image_id)
    reports = project.state_dir / "reports"
    junit_path = Path(options.junit_file) if options.junit_file else reports / f"verify-{short}.xml"
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    junit_path.write_bytes(merge_junit([("host", host_xml), ("image", image_xml)], f"dlbase verify {target.ref}"))
    report.junit_file = str(junit_path)
    report_path = Path(options.report_file) if options.report_file else reports / f"verify-{short}.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report.report_file = str(report_path)
    # A partial run that passed proves too little to publish on; a failing one is still news.
    if not options.partial or not passed:
        report.record_file = str(records.record(
            project, target.image_id, passed=passed, report_file=str(report_path), require_gpu=options.require_gpu,
            summary={"counts": report.counts(), "failed_checks": report.failed_checks, "partial": options.partial,
                     "gpus": gpus, "image": target.ref, "variant": target.variant,
                     "passed_checks": report.passed_checks},
            suites=suites_ran, host=host_now))
    write_json_atomic(report_path, report.to_dict(), sort_keys=False)
    return report


