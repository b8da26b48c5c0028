"""`dlbase scan` on a real image: a small one rendered from the project's templates
(Debian 12 minbase + Python 3.11's venv + a tiny locked wheel), against the fixture
advisories (tests/unit/data/osv). What it must find is what the image really installs:
Debian's apt 2.6.1 (CVE-2011-3374, answered by the repository's VEX statement), the pip
that Debian's ensurepip puts in the venv when it is older than 23.3 (CVE-2023-5752), and
not glibc's DSA-5514-1 (bookworm fixed it in 2.36-9+deb12u3)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dlbase.build import builder as build_mod
from dlbase.define.spec import BuildSpec
from packaging.version import Version
from tests.support.build_cli import cli_env
from tests.support.registry import free_port
from tests.support.small_project import make_small_project, write_lock

pytestmark = pytest.mark.docker

DB = Path(__file__).resolve().parents[1] / "unit" / "data" / "osv"


def scan(sp, *args: str) -> tuple[int, dict, str, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dlbase", "scan", *args, "--db", str(DB), "--json"], cwd=sp.root,
                          env=cli_env(sp), capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads(proc.stdout), proc.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def small_image(engine, tmp_path_factory, session_labels):
    sp = make_small_project(tmp_path_factory.mktemp("scan"))
    project = sp.project()
    spec = BuildSpec.of(project.compat, project.matrix.get(sp.variant))
    image = build_mod.build(project, spec, engine, tag=False, check_versions=False, extra_labels=session_labels,
                            wheelhouse_port=free_port()).image_id
    return sp, spec, image


def test_scan_reads_the_image_and_applies_vex(small_image) -> None:
    sp, spec, image = small_image
    code, body, err, seconds = scan(sp, image, "--max-db-age", "100000")
    print(f"\nscan of {image[:19]} took {seconds:.1f}s; {body['packages']}; counts {body['counts']}")
    assert code == 0, err
    assert body["os_ecosystem"] == "Debian:12" and body["variant"] == spec.name
    assert body["packages"]["Debian:12"] > 50 and body["packages"]["PyPI"] >= 2  # dlbase-tiny and pip
    assert body["lock"]["checked"] is True and body["lock"]["agrees"] is True and body["lock"]["not_in_lock"] == ["pip"]
    assert not body["not_covered"]
    open_ids = {f["id"] for f in body["findings"]}
    assert "DSA-5514-1" not in open_ids  # glibc in today's bookworm is past the fix
    vexed = {f["id"]: f for f in body["vex"]}
    assert set(vexed) == {"DEBIAN-CVE-2011-3374"}
    assert vexed["DEBIAN-CVE-2011-3374"]["installed_version"].startswith("2.6.")
    assert vexed["DEBIAN-CVE-2011-3374"]["vex"]["justification"] == "vulnerable_code_not_in_execute_path"
    # Debian 12's ensurepip wheel is pip 23.0.1: read from the venv's dist-info, matched by range.
    pip = next(f for f in body["findings"] if f["package"] == "pip")
    assert pip["id"] == "PYSEC-2023-228" and Version(pip["installed_version"]) < Version("23.3")
    assert pip["severity"] == "LOW" and pip["fixed"] == ["23.3"]
    assert body["counts_without_vex"]["UNKNOWN"] == body["counts"]["UNKNOWN"] + 1
    # `dlbase report` shows the newest scan's counts.
    proc = subprocess.run([sys.executable, "-m", "dlbase", "report", image, "--json"], cwd=sp.root, env=cli_env(sp),
                          capture_output=True, text=True, timeout=300)
    shown = json.loads(proc.stdout)["scan"]
    assert shown["counts"] == body["counts"] and shown["vex_applied"] == 1


def test_scan_without_vex_and_fail_on(small_image) -> None:
    sp, _spec, image = small_image
    code, body, _err, _s = scan(sp, image, "--no-vex", "--fail-on", "unknown")
    assert code == 1 and body["exit_code"] == 1
    assert "DEBIAN-CVE-2011-3374" in {f["id"] for f in body["findings"]} and not body["vex"]


def test_scan_reports_an_image_that_disagrees_with_its_lock(small_image) -> None:
    sp, spec, image = small_image
    original = sp.lock.read_text()
    try:
        write_lock(spec, sp.lock, [("dlbase-tiny", "2.0", "0" * 64)])
        code, body, _err, _s = scan(sp, image)
        assert code == 8 and body["lock"]["agrees"] is False
        assert body["lock"]["disagreements"] == [{"name": "dlbase-tiny", "locked": "2.0", "installed": "1.0"}]
    finally:
        sp.lock.write_text(original)


def test_an_image_without_python_is_refused_not_reported_clean(small_image) -> None:
    sp, spec, _image = small_image
    code, body, _err, _s = scan(sp, spec.variant.base.image + ":" + spec.variant.base.tag)
    assert code == 8 and "no `python`" in body["message"] and "findings" not in body
