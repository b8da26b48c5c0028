"""A test run killed with SIGTERM (CI's time limit) leaves no labelled image behind.

Before: Python died on SIGTERM without running pytest's session finaliser, and a killed
CI run left 66 labelled images. Now conftest turns SIGTERM into KeyboardInterrupt, and
pytest tears its fixtures down as on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlbase.engine import Engine

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_runs_the_session_finaliser(engine: Engine, debian_base, tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    env = {**os.environ, "DLBASE_SIGTERM_PROBE": str(ready)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.integration.conftest",
         "--rootdir", str(ROOT), str(ROOT / "tests" / "support" / "sigterm_probe.py")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"the probe session did not get ready:\n{out[-3000:]}")
            time.sleep(0.5)
        info = json.loads(ready.read_text())
        label = ",".join(f"{k}={v}" for k, v in info["labels"].items())
        assert engine.images_with_label(label), "the probe's labelled image should exist before SIGTERM"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in out or "SIGTERM" in out, out[-3000:]
    assert engine.images_with_label(label) == [], f"labelled image left behind:\n{out[-3000:]}"
    assert not engine.image_exists(info["image"])
