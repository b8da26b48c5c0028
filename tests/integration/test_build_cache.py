"""Rebuilding after a change to the image's tests or to labels reuses the heavy layers.

The Dockerfile puts the hash-pinned pip install before the cheap, often-changing
layers (image facts, tests/image) and the build-time labels after everything, so those
changes must not re-run pip. A real torch image takes minutes; this uses a copy of the
project whose lock pins tiny stand-in wheels that *claim* the variant's versions
(a ``torch`` whose ``__version__`` is 2.6.0+cu124 and whose cuDNN reads 90100, a
``cv2`` of 4.11, ...), so the build passes the read-back, is tagged (into a repository
of this session's own) and keeps its layer cache -- a refused build discards its layers.

Timings are printed, not asserted: the machine is shared.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from dlbase.engine import Engine
from tests.support.build_cli import edit, free_port, insert_before_python_env, log_of, render, run_build, stand_in_stack
from tests.support.small_project import make_small_project

pytestmark = pytest.mark.docker

# The first install layer (one RUN per layer group of the lock).
PIP_STEP = re.compile(r"^Step (\d+)/\d+ : RUN /opt/venv/bin/python -B /opt/dlbase/install_group.py ", re.M)


def step_block(log: str, number: int) -> str:
    """The log lines of step ``number`` (its header up to the next step)."""
    found = re.search(rf"^Step {number}/\d+ : .*?(?=^Step \d+/\d+ : |\Z)", log, re.M | re.S)
    assert found, f"no step {number} in the log"
    return found.group(0)


def test_rebuild_after_test_or_label_change_reuses_the_pip_layer(engine: Engine, tmp_path: Path, session_labels,
                                                                  test_repo) -> None:
    sp = make_small_project(tmp_path)
    edit(sp.root / "images" / "matrix.yaml", "repository: dlbase/pytorch", f"repository: {test_repo['repo']}")
    # A step of this test's own before the lock: the first build does the heavy work for real.
    insert_before_python_env(sp, f"ENV DLBASE_TEST_TOKEN=cache-{uuid.uuid4().hex[:12]}")
    render(sp)
    stand_in_stack(sp)

    # The wheelhouse URL is a build arg of the pip step, so part of its cache key. The
    # default fixed port may be held by a concurrent build on this shared machine (the
    # builder then falls back to a random one); a port of this test's own keeps it fixed.
    port = {"DLBASE_WHEELHOUSE_PORT": str(free_port())}
    first = run_build(sp, session_labels, **port)
    assert first.code == 0, first.stderr
    first_log = log_of(first, sp)
    pip_step = int(PIP_STEP.search(first_log).group(1))
    assert "Successfully installed" in step_block(first_log, pip_step)

    (sp.root / "tests" / "image" / "test_versions.py").open("a").write("\n# edited by test_build_cache\n")
    after_test_edit = run_build(sp, session_labels, **port)
    after_label = run_build(sp, session_labels, "--label", "dlbase.test-case=label-only-change", **port)
    print(f"\n--- stand-in image: first build {first.seconds}s, after a tests/image edit "
          f"{after_test_edit.seconds}s, after a new --label {after_label.seconds}s")

    for name, out in (("tests/image edit", after_test_edit), ("new label", after_label)):
        assert out.code == 0, f"{name}: {out.stderr}"
        log = log_of(out, sp)
        pip = step_block(log, pip_step)
        assert " ---> Using cache" in pip, f"{name}: pip re-ran:\n{pip}"
        assert "Running in" not in pip and "Successfully installed" not in pip, f"{name}: pip re-ran"
        assert re.search(rf"step {pip_step}/\d+ \(cached\) RUN /opt/venv/bin/python -B /opt/dlbase/install_group", out.stderr), out.stderr
        summary = re.search(r"\((\d+) of (\d+) steps from the layer cache\)", out.stderr)
        assert summary and int(summary.group(1)) >= pip_step - 1, out.stderr
        print(f"  {name}: {summary.group(0)}")
    copy_tests = re.search(r"^Step (\d+)/\d+ : COPY --from=sources /sources/tests/image/", first_log, re.M)
    assert copy_tests
    assert " ---> Using cache" not in step_block(log_of(after_test_edit, sp), int(copy_tests.group(1)))
    assert " ---> Using cache" in step_block(log_of(after_label, sp), int(copy_tests.group(1)))
