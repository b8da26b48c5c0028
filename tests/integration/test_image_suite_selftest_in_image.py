"""The in-image suite's self-test (tests/unit/test_image_suite_selftest.py) run where
albumentations really is: inside the default image. On the host venv it skips, so this
is what proves, on every CI run, that the property tests fail against a broken library."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dlbase.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_property_suite_fails_against_a_patched_albumentations_inside_the_image(
        default_image: dict, engine: Engine, session_labels: dict[str, str], tmp_path: Path) -> None:
    shutil.copy(ROOT / "tests" / "unit" / "test_image_suite_selftest.py", tmp_path / "test_selftest.py")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {default_image['image_id']}\nCOPY test_selftest.py /opt/dlbase/selftest/test_selftest.py\n")
    image = engine.build(tmp_path, labels=session_labels)
    res = engine.run(image, ["python", "-m", "pytest", "/opt/dlbase/selftest", "-q", "-p", "no:cacheprovider"],
                     environment={"DLBASE_IMAGE_SUITE": "/opt/dlbase/tests"}, timeout=900,
                     labels=session_labels)
    tail = "\n".join(res.output.splitlines()[-20:])
    assert res.exit_code == 0, tail
    passed = re.search(r"(\d+) passed", tail)
    assert passed and int(passed.group(1)) >= 7 and "skipped" not in tail, tail
