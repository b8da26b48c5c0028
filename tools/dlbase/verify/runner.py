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
publishing can refuse an image that was never verified. This module orchestrates; the
parts live beside it: junit.py (the XML), report.py (rows and report), children.py
(the host half's process), jupyter.py (the notebook probe).

Nothing here prints; progress goes to a ``say`` callback. Every container this module
(or the host half it launches) starts carries ``dlbase.verify-run=<id>``, and whatever
carries it is removed before :func:`verify` returns -- on success, failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dlbase import suites
from dlbase.core import documents
from dlbase.core.errors import Interrupted, InvalidInput, Missing
from dlbase.core.fsutil import write_json_atomic
from dlbase.core.imageref import labels_of, short_id
from dlbase.define.project import Project
from dlbase.define.spec import TESTS_IN_IMAGE, BuildSpec
from dlbase.core.sizes import DEFAULT_SHM
from dlbase.engine import VERIFY_RUN_LABEL, Engine
from dlbase.image.local_image import locate
from dlbase.verify import hostfacts, records
from dlbase.verify.suite_digest import folder_files, suite_digest
from dlbase.verify.children import child_env, run_interruptible
from dlbase.verify.junit import merge_junit, parse_junit
from dlbase.verify.report import ONLY, Row, VerifyReport, host_rows, image_rows
from dlbase.define import labels as image_labels

PURPOSE_LABEL = "dlbase.purpose"
IMAGE_JUNIT = "/tmp/dlbase-verify/junit.xml"
HOST_SUITE = "tests/infra"  # the name the host half's suite goes by in records and attestations
IMAGE_SUITE_TIMEOUT = 1800
HOST_SUITE_TIMEOUT = 900
EXPECT_ENV = "DLBASE_VERIFY_EXPECT"
CHECKS_ENV = "DLBASE_VERIFY_CHECKS_OUT"


# --------------------------------------------------------------------------- values


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
    flavor_name = labels.get(image_labels.FLAVOR)
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


# --------------------------------------------------------------------------- running


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
    env = {**child_env(), EXPECT_ENV: str(expect_file), CHECKS_ENV: str(checks_file)}
    rc, out = run_interruptible(cmd, env=env, timeout=options.host_timeout, cwd=project.root)
    data = junit.read_bytes() if junit.is_file() else None
    if rc is None:
        return [Row("host", "host checks (testinfra)", "error", options.host_timeout,
                    f"timed out after {options.host_timeout}s")], data, rc
    if rc == 5 and options.keyword:
        return [], data, rc  # -k selected no host check
    if data is None or rc not in (0, 1):
        tail = " | ".join(out.strip().splitlines()[-6:])
        return [Row("host", "host checks (testinfra)", "error", 0.0, f"pytest exit {rc}: {tail}")], data, rc
    names = documents.read_json_file(checks_file, "report") if checks_file.is_file() else {}
    names = names if isinstance(names, dict) else {}
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
    host_now = hostfacts.host_facts(engine, None)  # the host as it is while the checks run
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
                suites_ran[HOST_SUITE] = suite_digest(folder_files(suites.infra_dir()))
                rows += host
            if options.only in (None, "image"):
                say(f"in-image suite ({TESTS_IN_IMAGE}) as the image's default user")
                image, image_xml, image_rc = _image_half(engine, box.id, options)
                with contextlib.suppress(Missing):  # no suite in the image: its half is an error row already
                    suites_ran[TESTS_IN_IMAGE] = suite_digest(engine.read_files(box.id, TESTS_IN_IMAGE))
                rows += image
    except KeyboardInterrupt:
        raise Interrupted(f"verify of {target.ref} interrupted; its containers were removed") from None
    finally:
        with contextlib.suppress(Exception):
            engine.cleanup(f"{VERIFY_RUN_LABEL}={run_id}")  # e.g. a Jupyter container of a killed host half
    passed = bool(rows) and not any(r.result in ("failed", "error") for r in rows)
    flavor = target.labels.get(image_labels.FLAVOR)
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


