"""verify's pure parts: reading junit XML into summary rows, and the Jupyter probe
against a stand-in server on loopback (no daemon)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from dlbase.verify import junit, report
from dlbase.verify.jupyter import probe_jupyter

from tests.support.fake_jupyter import FAKE_JUPYTER



JUNIT_SAMPLE = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="image" errors="0" failures="1" skipped="2" tests="5" time="1.5">
<testcase classname="test_versions" name="test_a" time="0.5"/>
<testcase classname="test_versions" name="test_b" time="0.25"><failure message="AssertionError: torch 2.6.0 != 2.5.0&#10;assert False">trace</failure></testcase>
<testcase classname="test_gpu" name="test_c" time="0"><skipped type="pytest.skip" message="GPU test on a CPU host: no GPU">skip</skipped></testcase>
<testcase classname="test_gpu" name="test_d" time="0"><skipped type="pytest.skip" message="GPU test on a CPU host: no GPU">skip</skipped></testcase>
<testcase classname="test_aug_flips" name="test_e[hflip]" time="0.1"><skipped type="pytest.xfail" message="known">x</skipped></testcase>
</testsuite></testsuites>"""


def test_parse_junit_and_group_rows_per_file() -> None:
    cases = junit.parse_junit(JUNIT_SAMPLE)
    assert [(c.file, c.outcome) for c in cases] == [
        ("test_versions.py", "passed"), ("test_versions.py", "failed"), ("test_gpu.py", "skipped"),
        ("test_gpu.py", "skipped"), ("test_aug_flips.py", "xfailed")]
    assert cases[1].message == "torch 2.6.0 != 2.5.0"
    rows = report.image_rows(cases)
    assert [(r.check, r.result) for r in rows] == [
        ("versions (test_versions.py)", "failed"), ("  x test_versions.py::test_b", "failed"),
        ("GPU (test_gpu.py)", "skipped"), ("augmentation: flips (test_aug_flips.py)", "passed")]
    assert rows[2].reason == "2 skipped - skipped: GPU test on a CPU host: no GPU"
    merged = ET.fromstring(junit.merge_junit([("host", None), ("image", JUNIT_SAMPLE.encode())], "x"))
    assert merged.get("tests") == "5" and merged.get("failures") == "1"
    assert [s.get("name") for s in merged.iter("testsuite")] == ["image: image"]


def test_probe_jupyter_against_the_stand_in_without_docker(tmp_path: Path) -> None:
    script = tmp_path / "fake_jupyter.py"
    script.write_text(FAKE_JUPYTER)
    for open_server in (False, True):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "PORT": str(port), "JUPYTER_TOKEN": "sekrit",
               "FAKE_JUPYTER_OPEN": "1" if open_server else "0"}
        server = subprocess.Popen([sys.executable, str(script)], env=env)
        try:
            result = probe_jupyter(f"http://127.0.0.1:{port}", "sekrit", timeout=20)
            wrong = probe_jupyter(f"http://127.0.0.1:{port}", "not-the-token", timeout=20)
        finally:
            server.kill()
            server.wait()
        if open_server:
            assert not result.ok and "does not require its token" in result.problems[0]
        else:
            assert result.ok and result.version == "0.0-fake", result.problems
            assert not wrong.ok and any("with the token answered 403" in p for p in wrong.problems)
    nothing = probe_jupyter(f"http://127.0.0.1:{port}", "x", timeout=1, interval=0.2)
    assert not nothing.ok and "no Jupyter server answered" in nothing.problems[0]
