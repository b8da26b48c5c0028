"""Run only by tests/integration/test_sigterm_cleanup.py, in a pytest of its own (with
``-p tests.integration.conftest``): builds one image labelled with that session's label,
says so in the file named by DLBASE_SIGTERM_PROBE, then waits to be killed with SIGTERM.
Not collected by the normal run (the file name does not start with test_)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def test_build_then_wait_for_sigterm(engine, context_dir, session_labels) -> None:
    image_id = engine.build(context_dir("RUN true"), labels=session_labels)
    Path(os.environ["DLBASE_SIGTERM_PROBE"]).write_text(json.dumps({"labels": session_labels, "image": image_id}))
    time.sleep(300)
